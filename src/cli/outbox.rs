//! `partnerwatch outbox [--pending] [--dead] [--retry ID]`: what waits, what was sent, what
//! died, and a second chance for a dead letter.

use std::fmt::Write;

use clap::Args;
use jiff::Timestamp;

use crate::model::DeliveryStatus;
use crate::store::Store;

use super::Output;

#[derive(Debug, Args)]
pub struct OutboxArgs {
    /// List the deliveries waiting to be sent (or retried).
    #[arg(long)]
    pub pending: bool,
    /// List the dead-lettered deliveries.
    #[arg(long)]
    pub dead: bool,
    /// Put a dead (or pending) delivery back in the queue now, with its attempts reset; the
    /// next `poll` or the running daemon sends it.
    #[arg(long, value_name = "ID")]
    pub retry: Option<u64>,
}

pub fn outbox(store: &Store, args: &OutboxArgs) -> anyhow::Result<Output> {
    let mut out = String::new();
    if let Some(id) = args.retry {
        let Some(mut d) = store.deliveries(None)?.into_iter().find(|d| d.id == id) else {
            anyhow::bail!(
                "no delivery {id} in the outbox (`partnerwatch outbox --dead` lists them)"
            );
        };
        if d.status == DeliveryStatus::Sent {
            anyhow::bail!(
                "delivery {id} was already sent {}",
                d.sent_at.map(|t| t.to_string()).unwrap_or_default()
            );
        }
        d.status = DeliveryStatus::Pending;
        d.attempts = 0;
        d.next_attempt_at = Timestamp::now();
        store.update_delivery(&d)?;
        writeln!(
            out,
            "delivery {id} ({} → {}) is queued again; the next poll or the running daemon sends it",
            d.what(),
            d.channel
        )?;
        return Ok(Output::text(out));
    }
    let all = store.deliveries(None)?;
    let count = |s| all.iter().filter(|d| d.status == s).count();
    writeln!(
        out,
        "outbox: {} pending, {} dead, {} sent",
        count(DeliveryStatus::Pending),
        count(DeliveryStatus::Dead),
        count(DeliveryStatus::Sent)
    )?;
    let list = |out: &mut String, status: DeliveryStatus| -> std::fmt::Result {
        for d in all.iter().filter(|d| d.status == status) {
            writeln!(
                out,
                "{:>8}  {:<7} {:<28} {:<14} attempts {}  next {}  {}{}",
                d.id,
                format!("{:?}", d.status).to_lowercase(),
                d.what(),
                d.channel,
                d.attempts,
                d.next_attempt_at.strftime("%Y-%m-%d %H:%M:%S"),
                d.message.title.chars().take(60).collect::<String>(),
                d.last_error
                    .as_deref()
                    .map(|e| format!("\n          last error: {e}"))
                    .unwrap_or_default()
            )?;
        }
        Ok(())
    };
    if args.pending || !args.dead {
        list(&mut out, DeliveryStatus::Pending)?;
    }
    if args.dead || !args.pending {
        list(&mut out, DeliveryStatus::Dead)?;
    }
    Ok(Output::text(out))
}
