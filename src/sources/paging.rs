//! Following a page chain safely. Partner Center's `@odata.nextLink` may name another scheme
//! or path than the one configured (the documentation's own sample returns
//! `http://…/v1.0/referrals?$skiptoken=…` for `https://…/v1.0/engagements/referrals`), so
//! only its query is taken; scheme, host and path stay the configured ones, and a bearer
//! token is therefore never sent to any other host.

use url::Url;

/// The next page's URL: the configured `endpoint` with the query of `next_link`.
pub fn next_page_url(endpoint: &Url, next_link: &str) -> Result<Url, String> {
    let query = match Url::parse(next_link) {
        Ok(link) => link.query().map(str::to_string),
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
        let next = next_page_url(
            &endpoint,
            "http://evil.example.com/v1.0/referrals?$skiptoken=k181pEdP0ykypkieJfcxX",
        )
        .unwrap();
        assert_eq!(next.as_str(), "https://api.partner.microsoft.com/v1.0/engagements/referrals?$skiptoken=k181pEdP0ykypkieJfcxX");
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
