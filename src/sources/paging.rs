//! Following a page chain safely. Partner Center's `@odata.nextLink` may name another scheme
//! or path than the one configured (the documentation's own sample returns
//! `http://…/v1.0/referrals?$skiptoken=…` for `https://…/v1.0/engagements/referrals`), so
//! only its query is taken; scheme, host and path stay the configured ones, and a bearer
//! token is therefore never sent to any other host. A link that names another host is refused
//! outright: such an answer is not to be trusted for the rest of the chain either.

use url::Url;

/// The next page's URL: the configured `endpoint` with the query of `next_link`.
pub fn next_page_url(endpoint: &Url, next_link: &str) -> Result<Url, String> {
    let query = match Url::parse(next_link) {
        Ok(link) => {
            if let (Some(theirs), Some(ours)) = (link.host_str(), endpoint.host_str()) {
                if !theirs.eq_ignore_ascii_case(ours) {
                    return Err(format!(
                        "the next link points at another host ({theirs}); refusing to follow it"
                    ));
                }
            }
            link.query().map(str::to_string)
        }
        Err(_) => next_link.split_once('?').map(|(_, q)| q.to_string()),
    };
    let query = query.filter(|q| !q.is_empty()).ok_or_else(|| {
        "the next link carries no query (no $skiptoken): cannot continue".to_string()
    })?;
    let mut url = endpoint.clone();
    url.set_query(Some(&query));
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_configured_scheme_host_and_path() {
        let endpoint =
            Url::parse("https://api.partner.microsoft.com/v1.0/engagements/referrals?$filter=x")
                .unwrap();
        // The documentation's own sample: plain http and another path, on the same host.
        let next = next_page_url(
            &endpoint,
            "http://api.partner.microsoft.com/v1.0/referrals?$skiptoken=k181pEdP0ykypkieJfcxX",
        )
        .unwrap();
        assert_eq!(next.as_str(), "https://api.partner.microsoft.com/v1.0/engagements/referrals?$skiptoken=k181pEdP0ykypkieJfcxX");
        // Another host: refused, so the token never goes there.
        let err = next_page_url(
            &endpoint,
            "https://evil.example.com/v1.0/referrals?$skiptoken=x",
        )
        .unwrap_err();
        assert!(err.contains("another host (evil.example.com)"), "{err}");
        assert!(
            next_page_url(&endpoint, "http://api.partner.microsoft.com/v1.0/referrals").is_err()
        );
        assert_eq!(
            next_page_url(&endpoint, "/v1.0/referrals?$skiptoken=a")
                .unwrap()
                .query(),
            Some("$skiptoken=a")
        );
    }
}
