//! [`Fetcher`]: one sweep's GETs with one bearer token, renewed once if the API refuses it.

use jiff::Timestamp;
use url::Url;

use super::SourceError;
use crate::auth::TokenProvider;
use crate::config::Secret;
use crate::http::Http;

pub struct Fetcher<'a> {
    http: &'a Http,
    tokens: &'a TokenProvider,
    audience: &'static str,
    token: Secret,
    refreshed: bool,
    now: Timestamp,
    /// How deeply the last page fetched nests.
    page_depth: usize,
    /// Where the last page's top-level `value` array lies, if it has one.
    page_value: Option<std::ops::Range<usize>>,
    /// The request id of the last page fetched ("request id X" or "MS-RequestId X").
    request: String,
    /// Pages and bytes this sweep has read, against `http.sweep_max_pages` and `_bytes`.
    pages: u32,
    bytes: u64,
}

impl<'a> Fetcher<'a> {
    /// The request id of the last page fetched, for an error about what it held.
    pub fn request(&self) -> &str {
        &self.request
    }

    /// How deeply the last page fetched nests (its records nest no deeper).
    pub fn page_depth(&self) -> usize {
        self.page_depth
    }

    /// Where the last page fetched holds its top-level `value` array (an OData page's
    /// records), found by the same pass that measured its depth.
    pub fn page_value(&self) -> Option<std::ops::Range<usize>> {
        self.page_value.clone()
    }

    pub async fn new(
        http: &'a Http,
        tokens: &'a TokenProvider,
        audience: &'static str,
        now: Timestamp,
    ) -> Result<Fetcher<'a>, SourceError> {
        let token = tokens.token(audience, now).await?;
        Ok(Self {
            http,
            tokens,
            audience,
            token,
            refreshed: false,
            now,
            page_depth: 0,
            page_value: None,
            request: String::new(),
            pages: 0,
            bytes: 0,
        })
    }

    /// GETs `url` into `body` and measures how it nests ([`super::lazy::page_shape`]).
    pub async fn get(
        &mut self,
        url: &Url,
        what: &str,
        body: &mut Vec<u8>,
    ) -> Result<(), SourceError> {
        self.fetch(url, what, body).await?;
        self.scanned(what, super::lazy::page_shape(body))
    }

    /// Takes the shape of the page just fetched, found by the caller's own pass over it
    /// ([`super::lazy::scan_page`]); a page nested deeper than partnerwatch reads is an
    /// error.
    pub fn scanned(&mut self, what: &str, shape: super::lazy::Shape) -> Result<(), SourceError> {
        self.page_depth = shape.depth;
        self.page_value = shape.value;
        if shape.depth > super::lazy::MAX_PAGE_DEPTH {
            return Err(SourceError::TooDeep {
                what: what.to_string(),
                depth: shape.depth,
            });
        }
        Ok(())
    }

    /// GETs `url` into `body`, not looking inside. An access token the API answers 401 to is
    /// renewed once per sweep, then the call is made again.
    pub async fn fetch(
        &mut self,
        url: &Url,
        what: &str,
        body: &mut Vec<u8>,
    ) -> Result<(), SourceError> {
        let config = self.http.config();
        if self.pages >= config.sweep_max_pages {
            return Err(SourceError::TooLarge {
                what: what.to_string(),
                reason: format!(
                    "the page chain goes on past {} pages (http.sweep_max_pages)",
                    config.sweep_max_pages
                ),
            });
        }
        self.pages += 1;
        let fetched: Result<String, SourceError> =
            match self.http.get_into(url, &self.token, what, body).await {
                Err(e)
                    if e.status() == Some(reqwest::StatusCode::UNAUTHORIZED)
                        && !self.refreshed
                        && !matches!(self.tokens, TokenProvider::Static(_)) =>
                {
                    self.refreshed = true;
                    self.tokens.invalidate(self.audience);
                    self.token = self.tokens.token(self.audience, self.now).await?;
                    Ok(self.http.get_into(url, &self.token, what, body).await?)
                }
                other => Ok(other?),
            };
        self.request = fetched?;
        self.bytes += body.len() as u64;
        if self.bytes > self.http.config().sweep_max_bytes {
            return Err(SourceError::TooLarge {
                what: what.to_string(),
                reason: format!(
                    "the sweep has read {} bytes, more than http.sweep_max_bytes ({})",
                    self.bytes,
                    self.http.config().sweep_max_bytes
                ),
            });
        }
        Ok(())
    }
}
