//! The outbox: every delivery ever queued (for `partnerwatch outbox`), with indexes of the
//! pending and the dead-lettered ones so a delivery pass reads only what waits. A delivery is
//! written before it is sent (with the commit that queued it) and marked after, a batch of
//! sends at a time with one flush ([`Store::update_deliveries`]).

use sled::transaction::{
    ConflictableTransactionError, TransactionalTree, UnabortableTransactionError,
};
use sled::Transactional;

use super::meta::MetaKey;
use super::{transaction_error, Store, StoreError};
use crate::model::{Delivery, DeliveryStatus};

/// Queues a new delivery inside a transaction over the outbox and its pending index: the one
/// way a delivery enters the outbox. Returns the id it was given.
pub(super) fn insert_delivery(
    outbox: &TransactionalTree,
    pending: &TransactionalTree,
    delivery: &Delivery,
) -> Result<u64, UnabortableTransactionError> {
    let mut delivery = delivery.clone();
    delivery.id = outbox.generate_id()? + 1;
    let bytes = serde_json::to_vec(&delivery).expect("deliveries serialize");
    outbox.insert(&delivery.id.to_be_bytes(), bytes)?;
    pending.insert(&delivery.id.to_be_bytes(), &[])?;
    Ok(delivery.id)
}

impl Store {
    /// The deliveries with the given status, oldest first. Pending ones come from the pending
    /// index, without reading the deliveries already sent.
    pub fn deliveries(&self, status: Option<DeliveryStatus>) -> Result<Vec<Delivery>, StoreError> {
        let t = self.t()?;
        let mut out = Vec::new();
        let index = match status {
            Some(DeliveryStatus::Pending) => Some(&t.pending),
            Some(DeliveryStatus::Dead) => Some(&t.dead),
            _ => None,
        };
        if let Some(index) = index {
            for item in index.iter() {
                let (id, _) = item?;
                if let Some(bytes) = t.outbox.get(&id)? {
                    let d = decode_delivery(&bytes)?;
                    if Some(d.status) == status {
                        out.push(d);
                    }
                }
            }
            return Ok(out);
        }
        for item in t.outbox.iter() {
            let (_, bytes) = item?;
            let d = decode_delivery(&bytes)?;
            if status.is_none_or(|s| s == d.status) {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Writes a delivery's new state (and its place in the pending index) and flushes, so that
    /// "sent" survives a crash.
    pub fn update_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        self.update_deliveries(std::slice::from_ref(delivery))
    }

    /// Writes the new states of `deliveries` in one transaction and flushes once: how a batch
    /// of sends is finished (group commit). A crash before the flush forgets the whole batch,
    /// so its messages are sent again; none is half-marked.
    pub fn update_deliveries(&self, deliveries: &[Delivery]) -> Result<(), StoreError> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let t = self.t()?;
        let encoded: Vec<([u8; 8], Vec<u8>, DeliveryStatus)> = deliveries
            .iter()
            .map(|d| {
                let bytes = serde_json::to_vec(d).expect("deliveries serialize");
                (d.id.to_be_bytes(), bytes, d.status)
            })
            .collect();
        (&t.outbox, &t.pending, &t.dead)
            .transaction(|(outbox, pending, dead)| {
                for (key, bytes, status) in &encoded {
                    outbox.insert(key, bytes.as_slice())?;
                    for (index, this) in [
                        (pending, DeliveryStatus::Pending),
                        (dead, DeliveryStatus::Dead),
                    ] {
                        if *status == this {
                            index.insert(key, &[])?;
                        } else {
                            index.remove(key)?;
                        }
                    }
                }
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            })
            .map_err(transaction_error)?;
        t.db.flush()?;
        Ok(())
    }

    /// How many deliveries are waiting and how many are dead-lettered.
    pub fn outbox_counts(&self) -> Result<(usize, usize), StoreError> {
        let t = self.t()?;
        Ok((t.pending.len(), t.dead.len()))
    }

    /// Builds the status indexes once for a state folder written before they existed.
    pub(super) fn index_statuses(&self) -> Result<(), StoreError> {
        let t = self.t()?;
        let done = MetaKey::OutboxStatusIndexed.encode();
        if t.meta.contains_key(&done)? {
            return Ok(());
        }
        for item in t.outbox.iter() {
            let (id, bytes) = item?;
            match decode_delivery(&bytes)?.status {
                DeliveryStatus::Pending => t.pending.insert(id, &[])?,
                DeliveryStatus::Dead => t.dead.insert(id, &[])?,
                DeliveryStatus::Sent => None,
            };
        }
        t.meta.insert(done, &[])?;
        t.db.flush()?;
        Ok(())
    }
}

fn decode_delivery(bytes: &[u8]) -> Result<Delivery, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        what: "delivery",
        detail: e.to_string(),
    })
}
