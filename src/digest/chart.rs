//! The digest's pictures, drawn with plotters into an RGB buffer and encoded as PNG: the
//! pipeline by week, and the Copilot adoption-health distribution now against a week ago.
//! Text uses DejaVu Sans compiled into the binary, so a machine without fonts draws the same.

use std::sync::Once;

use plotters::prelude::*;
use plotters::style::{FontStyle, RGBColor};

use super::content::{HealthCount, Week};

const FONT: &str = "sans-serif";
const INK: RGBColor = RGBColor(0x24, 0x29, 0x2f);
const MUTED: RGBColor = RGBColor(0x8c, 0x95, 0x9f);
const ACCENT: RGBColor = RGBColor(0x00, 0x78, 0xd4);
const LAST_WEEK: RGBColor = RGBColor(0xc8, 0xd1, 0xda);

fn fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

/// A PNG image.
#[derive(Debug, Clone)]
pub struct Png {
    pub bytes: Vec<u8>,
    /// In device pixels: [`SCALE`] times the size it is shown at.
    pub width: u32,
    pub height: u32,
}

impl Png {
    /// The width to show it at (CSS pixels).
    pub fn shown_width(&self) -> u32 {
        self.width / SCALE as u32
    }

    pub fn shown_height(&self) -> u32 {
        self.height / SCALE as u32
    }
}

/// Charts are drawn at twice the size they are shown at, sharp on high-density screens.
pub const SCALE: i32 = 2;

/// The width a chart is shown at (CSS pixels): narrow enough that on a 360 px phone, where it
/// shrinks to about 320 px, its 18 px labels still read at 12 px.
pub const SHOWN_WIDTH: i32 = 480;

/// A length in the chart's design pixels, in device pixels.
const fn px(n: i32) -> i32 {
    n * SCALE
}

/// A font of `size` design pixels.
fn font(size: i32, bold: bool, color: &RGBColor) -> TextStyle<'static> {
    let f = (FONT, f64::from(px(size))).into_font();
    let f = if bold { f.style(FontStyle::Bold) } else { f };
    f.color(color)
}

fn encode(buffer: &[u8], width: u32, height: u32) -> Result<Png, String> {
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
        writer.write_image_data(buffer).map_err(|e| e.to_string())?;
    }
    Ok(Png {
        bytes,
        width,
        height,
    })
}

/// Draws a chart of `width` × `height` design pixels at [`SCALE`].
fn draw<F>(width: i32, height: i32, paint: F) -> Result<Png, String>
where
    F: FnOnce(&DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>) -> Result<(), String>,
{
    fonts();
    let (w, h) = (px(width) as u32, px(height) as u32);
    let mut buffer = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        paint(&root)?;
        root.present().map_err(|e| e.to_string())?;
    }
    encode(&buffer, w, h)
}

fn e<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// The smallest text a chart draws, in design pixels.
pub const LABEL_PX: i32 = 18;

/// New referrals per week: one bar per week, the count above it, the week below.
pub fn pipeline(weeks: &[Week]) -> Result<Png, String> {
    let (width, height) = (SHOWN_WIDTH, 240);
    draw(width, height, |root| {
        root.draw(&Text::new(
            "New referrals per week",
            (px(12), px(10)),
            font(20, true, &INK),
        ))
        .map_err(e)?;
        let max = weeks.iter().map(|w| w.new).max().unwrap_or(0).max(1) as f64;
        let (left, right, top, bottom) = (12, width - 12, 64, height - 34);
        let slot = (right - left) / weeks.len().max(1) as i32;
        let small = font(LABEL_PX, false, &MUTED);
        let value = font(LABEL_PX, true, &INK);
        root.draw(&PathElement::new(
            vec![(px(left), px(bottom)), (px(right), px(bottom))],
            MUTED.stroke_width(px(1) as u32),
        ))
        .map_err(e)?;
        for (i, w) in weeks.iter().enumerate() {
            let x0 = left + slot * i as i32 + slot / 8;
            let x1 = left + slot * (i as i32 + 1) - slot / 8;
            let h = ((bottom - top) as f64 * w.new as f64 / max).round() as i32;
            let color = if i + 1 == weeks.len() {
                ACCENT
            } else {
                LAST_WEEK
            };
            if h > 0 {
                root.draw(&Rectangle::new(
                    [(px(x0), px(bottom - h)), (px(x1), px(bottom))],
                    color.filled(),
                ))
                .map_err(e)?;
            }
            let centred = |text: &str, style: &TextStyle<'static>, y: i32| {
                let (tw, _) = root.estimate_text_size(text, style).unwrap_or((0, 0));
                Text::new(
                    text.to_string(),
                    (px((x0 + x1) / 2) - tw as i32 / 2, px(y)),
                    style.clone(),
                )
            };
            root.draw(&centred(&w.new.to_string(), &value, bottom - h - 24))
                .map_err(e)?;
            root.draw(&centred(&w.label, &small, bottom + 8))
                .map_err(e)?;
        }
        Ok(())
    })
}

/// Tenants per adoption health class: a pale bar for a week ago, a blue one for now.
pub fn adoption(rows: &[HealthCount], with_week_ago: bool) -> Result<Png, String> {
    // A row: the class on its own line, its bars under it (a phone has no room beside).
    let row_h = 64;
    let (width, height) = (SHOWN_WIDTH, 76 + row_h * rows.len().max(1) as i32);
    draw(width, height, |root| {
        root.draw(&Text::new(
            "Copilot adoption health",
            (px(12), px(10)),
            font(20, true, &INK),
        ))
        .map_err(e)?;
        let legend = font(LABEL_PX, false, &MUTED);
        let mut x = 12;
        let items: &[(&str, RGBColor)] = if with_week_ago {
            &[("a week ago", LAST_WEEK), ("now", ACCENT)]
        } else {
            &[("now", ACCENT)]
        };
        for (name, color) in items {
            root.draw(&Rectangle::new(
                [(px(x), px(44)), (px(x + 14), px(58))],
                color.filled(),
            ))
            .map_err(e)?;
            root.draw(&Text::new(*name, (px(x + 20), px(41)), legend.clone()))
                .map_err(e)?;
            x += 130;
        }
        let max = rows
            .iter()
            .map(|r| r.now.max(r.week_ago))
            .max()
            .unwrap_or(0)
            .max(1) as f64;
        let (left, right) = (12, width - 56);
        let label = font(LABEL_PX, false, &INK);
        let number = font(LABEL_PX, false, &INK);
        for (i, r) in rows.iter().enumerate() {
            let y = 74 + row_h * i as i32;
            root.draw(&Text::new(
                r.status.clone(),
                (px(left), px(y)),
                label.clone(),
            ))
            .map_err(e)?;
            let bar = |n: usize, y0: i32, y1: i32, color: RGBColor| {
                let w = ((right - left) as f64 * n as f64 / max).round() as i32;
                if w > 0 {
                    root.draw(&Rectangle::new(
                        [(px(left), px(y0)), (px(left + w), px(y1))],
                        color.filled(),
                    ))
                    .map_err(e)?;
                }
                root.draw(&Text::new(
                    n.to_string(),
                    (px(left + w + 6), px(y0 - 3)),
                    number.clone(),
                ))
                .map_err(e)
            };
            if with_week_ago {
                bar(r.week_ago, y + 24, y + 38, LAST_WEEK)?;
                bar(r.now, y + 42, y + 56, ACCENT)?;
            } else {
                bar(r.now, y + 28, y + 46, ACCENT)?;
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(png: &Png) -> (png::OutputInfo, Vec<u8>) {
        let decoder = png::Decoder::new(png.bytes.as_slice());
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (info, buf)
    }

    #[test]
    fn the_pipeline_chart_is_a_png_whose_bars_follow_the_counts() {
        let weeks: Vec<Week> = [0, 2, 4, 8]
            .iter()
            .map(|n| Week {
                label: format!("W{n}"),
                new: *n,
            })
            .collect();
        let png = pipeline(&weeks).unwrap();
        let (info, pixels) = decode(&png);
        // Drawn at twice the size it is shown at.
        assert_eq!((info.width, info.height), (960, 480));
        assert_eq!((png.shown_width(), png.shown_height()), (480, 240));
        // The tallest bar (the last week) is drawn in the accent colour; a column through the
        // empty first week holds none of it (design pixels, doubled).
        let at = |x: i32, y: i32| {
            let i = ((px(y) * 960 + px(x)) * 3) as usize;
            RGBColor(pixels[i], pixels[i + 1], pixels[i + 2])
        };
        let slot = (480 - 24) / 4;
        let last_x = 12 + slot * 3 + slot / 2;
        assert_eq!(at(last_x, 100), ACCENT, "the 8 bar reaches high");
        let first_x = 12 + slot / 2;
        assert!(
            (70..200).all(|y| at(first_x, y) != LAST_WEEK),
            "no bar for 0"
        );
    }

    #[test]
    fn the_adoption_chart_has_a_row_per_class() {
        let rows = vec![
            HealthCount {
                status: "Healthy".into(),
                now: 3,
                week_ago: 5,
                delta: "-2".into(),
            },
            HealthCount {
                status: "Starting \"new\" <b>".into(),
                now: 4,
                week_ago: 2,
                delta: "+2".into(),
            },
        ];
        let png = adoption(&rows, true).unwrap();
        let (info, pixels) = decode(&png);
        assert_eq!((info.width, info.height), (960, 2 * (76 + 2 * 64)));
        let at = |x: i32, y: i32| {
            let i = ((px(y) * 960 + px(x)) * 3) as usize;
            RGBColor(pixels[i], pixels[i + 1], pixels[i + 2])
        };
        // Each class has its pale bar (a week ago) above its blue one (now), under its label.
        for i in 0..2 {
            let y = 74 + 64 * i;
            assert_eq!(at(14, y + 31), LAST_WEEK, "row {i}: a week ago");
            assert_eq!(at(14, y + 49), ACCENT, "row {i}: now");
        }
        // The longest bar is the largest count (5, a week ago in row 0); 3 stops short of it.
        assert_eq!(at(400, 74 + 31), LAST_WEEK);
        assert_ne!(at(400, 74 + 49), ACCENT);
    }
}
