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
    pub width: u32,
    pub height: u32,
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

fn draw<F>(width: u32, height: u32, paint: F) -> Result<Png, String>
where
    F: FnOnce(&DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>) -> Result<(), String>,
{
    fonts();
    let mut buffer = vec![0u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        paint(&root)?;
        root.present().map_err(|e| e.to_string())?;
    }
    encode(&buffer, width, height)
}

fn e<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// New referrals per week: one bar per week, the count above it, the week below.
pub fn pipeline(weeks: &[Week]) -> Result<Png, String> {
    let (width, height) = (640u32, 260u32);
    draw(width, height, |root| {
        let title = (FONT, 18).into_font().style(FontStyle::Bold).color(&INK);
        root.draw(&Text::new("New referrals per week", (16, 12), title))
            .map_err(e)?;
        let max = weeks.iter().map(|w| w.new).max().unwrap_or(0).max(1) as f64;
        let (left, right, top, bottom) = (24i32, width as i32 - 24, 56i32, height as i32 - 36);
        let slot = (right - left) / weeks.len().max(1) as i32;
        let small = (FONT, 13).into_font().color(&MUTED);
        let value = (FONT, 14).into_font().style(FontStyle::Bold).color(&INK);
        root.draw(&PathElement::new(
            vec![(left, bottom), (right, bottom)],
            MUTED.stroke_width(1),
        ))
        .map_err(e)?;
        for (i, w) in weeks.iter().enumerate() {
            let x0 = left + slot * i as i32 + slot / 6;
            let x1 = left + slot * (i as i32 + 1) - slot / 6;
            let h = ((bottom - top) as f64 * w.new as f64 / max).round() as i32;
            let color = if i + 1 == weeks.len() {
                ACCENT
            } else {
                LAST_WEEK
            };
            if h > 0 {
                root.draw(&Rectangle::new(
                    [(x0, bottom - h), (x1, bottom)],
                    color.filled(),
                ))
                .map_err(e)?;
            }
            root.draw(&Text::new(
                w.new.to_string(),
                (
                    (x0 + x1) / 2 - 4 * w.new.to_string().len() as i32,
                    bottom - h - 20,
                ),
                value.clone(),
            ))
            .map_err(e)?;
            root.draw(&Text::new(w.label.clone(), (x0, bottom + 8), small.clone()))
                .map_err(e)?;
        }
        Ok(())
    })
}

/// Tenants per adoption health class: a pale bar for a week ago, a blue one for now.
pub fn adoption(rows: &[HealthCount], with_week_ago: bool) -> Result<Png, String> {
    let row_h = 34i32;
    let (width, height) = (640u32, (70 + row_h * rows.len().max(1) as i32) as u32);
    draw(width, height, |root| {
        let title = (FONT, 18).into_font().style(FontStyle::Bold).color(&INK);
        root.draw(&Text::new("Copilot adoption health", (16, 12), title))
            .map_err(e)?;
        let legend = (FONT, 13).into_font().color(&MUTED);
        let mut x = 16;
        let items: &[(&str, RGBColor)] = if with_week_ago {
            &[("a week ago", LAST_WEEK), ("now", ACCENT)]
        } else {
            &[("now", ACCENT)]
        };
        for (name, color) in items {
            root.draw(&Rectangle::new([(x, 40), (x + 12, 52)], color.filled()))
                .map_err(e)?;
            root.draw(&Text::new(*name, (x + 18, 39), legend.clone()))
                .map_err(e)?;
            x += 110;
        }
        let max = rows
            .iter()
            .map(|r| r.now.max(r.week_ago))
            .max()
            .unwrap_or(0)
            .max(1) as f64;
        let (label_w, right) = (250i32, width as i32 - 48);
        let label = (FONT, 13).into_font().color(&INK);
        let number = (FONT, 12).into_font().color(&INK);
        for (i, r) in rows.iter().enumerate() {
            let y = 64 + row_h * i as i32;
            root.draw(&Text::new(r.status.clone(), (16, y + 8), label.clone()))
                .map_err(e)?;
            let bar = |n: usize, y0: i32, y1: i32, color: RGBColor| {
                let w = ((right - label_w) as f64 * n as f64 / max).round() as i32;
                if w > 0 {
                    root.draw(&Rectangle::new(
                        [(label_w, y0), (label_w + w, y1)],
                        color.filled(),
                    ))
                    .map_err(e)?;
                }
                root.draw(&Text::new(
                    n.to_string(),
                    (label_w + w + 6, y0 - 1),
                    number.clone(),
                ))
                .map_err(e)
            };
            if with_week_ago {
                bar(r.week_ago, y + 2, y + 14, LAST_WEEK)?;
                bar(r.now, y + 16, y + 28, ACCENT)?;
            } else {
                bar(r.now, y + 8, y + 22, ACCENT)?;
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
        assert_eq!((info.width, info.height), (640, 260));
        // The tallest bar (the last week) is drawn in the accent colour; a column through the
        // empty first week holds none of it.
        let at = |x: u32, y: u32| {
            let i = ((y * 640 + x) * 3) as usize;
            RGBColor(pixels[i], pixels[i + 1], pixels[i + 2])
        };
        let slot = (640 - 48) / 4;
        let last_x = 24 + slot * 3 + slot / 2;
        assert_eq!(at(last_x as u32, 100), ACCENT, "the 8 bar reaches high");
        let first_x = 24 + slot / 2;
        assert!(
            (60..220).all(|y| at(first_x as u32, y) != LAST_WEEK),
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
        assert_eq!((info.width, info.height), (640, 70 + 2 * 34));
        let at = |x: u32, y: u32| {
            let i = ((y * 640 + x) * 3) as usize;
            RGBColor(pixels[i], pixels[i + 1], pixels[i + 2])
        };
        // Each class has its pale bar (a week ago) above its blue one (now), both starting
        // where the labels end.
        for i in 0..2u32 {
            let y = 64 + 34 * i;
            assert_eq!(at(252, y + 8), LAST_WEEK, "row {i}: a week ago");
            assert_eq!(at(252, y + 22), ACCENT, "row {i}: now");
        }
        // The longest bar is the largest count (5, a week ago in row 0); 3 stops short of it.
        assert_eq!(at(580, 64 + 8), LAST_WEEK);
        assert_ne!(at(580, 64 + 22), ACCENT);
    }
}
