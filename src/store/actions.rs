//! Action records ([`ActionRecord`]): written and flushed before anything is sent to Partner
//! Center, so that what a crash interrupted is found again.

use super::{Store, StoreError};
use crate::model::{ActionRecord, ActionState};

impl Store {
    fn actions_tree(&self) -> Result<sled::Tree, StoreError> {
        Ok(self.t()?.db.open_tree("actions")?)
    }

    /// Writes `action` and flushes: once this returns, a crash does not forget it.
    pub fn put_action(&self, action: &ActionRecord) -> Result<(), StoreError> {
        let tree = self.actions_tree()?;
        let bytes = serde_json::to_vec(action).expect("actions serialize");
        tree.insert(action.id.as_bytes(), bytes)?;
        tree.flush()?;
        Ok(())
    }

    /// Writes `actions` and flushes once.
    pub fn put_actions(&self, actions: &[ActionRecord]) -> Result<(), StoreError> {
        let tree = self.actions_tree()?;
        let mut batch = sled::Batch::default();
        for a in actions {
            batch.insert(
                a.id.as_bytes(),
                serde_json::to_vec(a).expect("actions serialize"),
            );
        }
        tree.apply_batch(batch)?;
        tree.flush()?;
        Ok(())
    }

    /// The action with this id, if there is one.
    pub fn action(&self, id: &str) -> Result<Option<ActionRecord>, StoreError> {
        let tree = self.actions_tree()?;
        tree.get(id.as_bytes())?
            .map(|bytes| {
                serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                    what: "action",
                    detail: e.to_string(),
                })
            })
            .transpose()
    }

    /// Every action in `state`.
    pub fn actions_in(&self, state: ActionState) -> Result<Vec<ActionRecord>, StoreError> {
        let tree = self.actions_tree()?;
        let mut out = Vec::new();
        for entry in tree.iter() {
            let (_, bytes) = entry?;
            if let Ok(a) = serde_json::from_slice::<ActionRecord>(&bytes) {
                if a.state == state {
                    out.push(a);
                }
            }
        }
        Ok(out)
    }
}
