//! The `inbox` channel: each message becomes a file in a folder, named after its delivery id,
//! so writing it again after a crash replaces the same file instead of adding a second one.

use std::path::PathBuf;

use super::SendOutcome;
use crate::model::Delivery;

#[derive(Debug)]
pub struct Inbox {
    dir: PathBuf,
}

impl Inbox {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The file a delivery is written to.
    pub fn path_for(&self, d: &Delivery) -> PathBuf {
        let kind = d.what().replace('.', "_");
        self.dir.join(format!("{:08}-{kind}.txt", d.id))
    }

    pub async fn send(&self, d: &Delivery) -> SendOutcome {
        let path = self.path_for(d);
        let tmp = path.with_extension("tmp");
        let body = format!("{}\n", d.message.body.raw().trim_end());
        let result = async {
            tokio::fs::create_dir_all(&self.dir).await?;
            tokio::fs::write(&tmp, body).await?;
            tokio::fs::rename(&tmp, &path).await
        }
        .await;
        match result {
            Ok(()) => SendOutcome::Delivered(format!("wrote {}", path.display())),
            Err(e) => SendOutcome::Retry {
                after: None,
                error: format!("cannot write {}: {e}", path.display()),
            },
        }
    }
}
