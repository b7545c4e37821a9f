//! The slice of OData the Referrals API documents: `$filter` with `eq`, `ne`, `gt`, `ge`,
//! `lt`, `le`, `and`, `or`, `not` and parentheses over properties and nested paths
//! (`customerProfile/address/country eq 'US'`), and `$orderby` on `createdDateTime` or
//! `updatedDateTime`. Anything else is refused with a 400, as the service does.
//!
//! Date-times are compared as OData v4 writes them: an unquoted `DateTimeOffset` literal
//! (`updatedDateTime gt 2026-11-23T08:00:00Z`) against the property read as a time. A quoted
//! date is a string, compared as text like any other, which does not order Partner Center's
//! seven-digit fractions the way times order.

use std::cmp::Ordering;

use serde_json::Value;

/// A parsed `$filter`.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    /// `path/any(var: inner)`: some element of the collection at `path` matches `inner`, whose
    /// paths start with `var` (api-docs/referrals-list.txt: `team/any(t:t/email eq '…')`).
    Any {
        path: Vec<String>,
        var: String,
        inner: Box<Filter>,
    },
    Compare {
        path: Vec<String>,
        op: Op,
        value: Literal,
    },
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Json(Value),
    /// An unquoted `DateTimeOffset` (`2026-11-23T08:00:00Z`).
    DateTime(jiff::Timestamp),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    Str(String),
    Word(String),
}

fn tokenize(s: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                out.push(Token::Open);
            }
            ')' => {
                chars.next();
                out.push(Token::Close);
            }
            '\'' => {
                chars.next();
                let mut lit = String::new();
                loop {
                    match chars.next() {
                        None => return Err("unterminated string literal".into()),
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            lit.push('\'');
                        }
                        Some('\'') => break,
                        Some(c) => lit.push(c),
                    }
                }
                out.push(Token::Str(lit));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || c == '(' || c == ')' || c == '\'' {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                out.push(Token::Word(word));
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek_word(&self, w: &str) -> bool {
        matches!(self.tokens.get(self.pos), Some(Token::Word(x)) if x.eq_ignore_ascii_case(w))
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn or(&mut self) -> Result<Filter, String> {
        let mut left = self.and()?;
        while self.peek_word("or") {
            self.pos += 1;
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, String> {
        let mut left = self.unary()?;
        while self.peek_word("and") {
            self.pos += 1;
            left = Filter::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, String> {
        if self.peek_word("not") {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        match self.next() {
            Some(Token::Open) => {
                let inner = self.or()?;
                match self.next() {
                    Some(Token::Close) => Ok(inner),
                    _ => Err("missing ')'".into()),
                }
            }
            Some(Token::Word(path))
                if path.to_ascii_lowercase().ends_with("/any")
                    && self.tokens.get(self.pos) == Some(&Token::Open) =>
            {
                self.pos += 1;
                let Some(Token::Word(first)) = self.tokens.get(self.pos).cloned() else {
                    return Err(format!("expected `var:` after {path}("));
                };
                let Some((var, rest)) = first.split_once(':') else {
                    return Err(format!("expected `var:` after {path}("));
                };
                if var.is_empty() || rest.is_empty() {
                    return Err(format!("expected `var:expression` after {path}("));
                }
                let var = var.to_string();
                self.tokens[self.pos] = Token::Word(rest.to_string());
                let inner = self.or()?;
                match self.next() {
                    Some(Token::Close) => {}
                    _ => return Err(format!("missing ')' after {path}(…")),
                }
                let collection = path[..path.len() - "/any".len()].to_string();
                Ok(Filter::Any {
                    path: collection.split('/').map(str::to_string).collect(),
                    var,
                    inner: Box::new(inner),
                })
            }
            Some(Token::Word(path)) => {
                if path.contains('(') || path.contains(':') {
                    return Err(format!("unsupported expression {path:?}"));
                }
                let op = match self.next() {
                    Some(Token::Word(op)) => match op.to_ascii_lowercase().as_str() {
                        "eq" => Op::Eq,
                        "ne" => Op::Ne,
                        "gt" => Op::Gt,
                        "ge" => Op::Ge,
                        "lt" => Op::Lt,
                        "le" => Op::Le,
                        other => return Err(format!("unsupported operator {other:?}")),
                    },
                    Some(Token::Open) => {
                        return Err(format!("unsupported function or lambda {path:?}(…)"))
                    }
                    other => {
                        return Err(format!(
                            "expected an operator after {path:?}, found {other:?}"
                        ))
                    }
                };
                let value = match self.next() {
                    Some(Token::Str(s)) => Literal::Json(Value::String(s)),
                    Some(Token::Word(w)) => match w.as_str() {
                        "true" => Literal::Json(Value::Bool(true)),
                        "false" => Literal::Json(Value::Bool(false)),
                        "null" => Literal::Json(Value::Null),
                        n if n.contains('T') => n
                            .parse::<jiff::Timestamp>()
                            .map(Literal::DateTime)
                            .map_err(|e| format!("bad DateTimeOffset literal {n:?}: {e}"))?,
                        n => serde_json::from_str::<serde_json::Number>(n)
                            .map(|n| Literal::Json(Value::Number(n)))
                            .map_err(|_| format!("bad literal {n:?}"))?,
                    },
                    other => {
                        return Err(format!(
                            "expected a literal after the operator, found {other:?}"
                        ))
                    }
                };
                Ok(Filter::Compare {
                    path: path.split('/').map(str::to_string).collect(),
                    op,
                    value,
                })
            }
            other => Err(format!("unexpected {other:?}")),
        }
    }
}

impl Filter {
    pub fn parse(s: &str) -> Result<Filter, String> {
        let mut p = Parser {
            tokens: tokenize(s)?,
            pos: 0,
        };
        let f = p.or()?;
        if p.pos < p.tokens.len() {
            return Err(format!("unexpected {:?}", p.tokens[p.pos]));
        }
        Ok(f)
    }

    /// Whether the filter compares the property `field` anywhere.
    pub fn mentions(&self, field: &str) -> bool {
        match self {
            Filter::And(a, b) | Filter::Or(a, b) => a.mentions(field) || b.mentions(field),
            Filter::Not(a) => a.mentions(field),
            Filter::Any { inner, .. } => inner.mentions(field),
            Filter::Compare { path, .. } => path.len() == 1 && path[0].eq_ignore_ascii_case(field),
        }
    }

    pub fn matches(&self, record: &Value) -> bool {
        match self {
            Filter::And(a, b) => a.matches(record) && b.matches(record),
            Filter::Or(a, b) => a.matches(record) || b.matches(record),
            Filter::Not(a) => !a.matches(record),
            Filter::Any { path, var, inner } => lookup(record, path)
                .and_then(Value::as_array)
                .is_some_and(|items| {
                    items
                        .iter()
                        .any(|item| inner.matches(&serde_json::json!({ var.as_str(): item })))
                }),
            Filter::Compare { path, op, value } => {
                let actual = lookup(record, path).unwrap_or(&Value::Null);
                let ord = match value {
                    Literal::Json(value) => compare(actual, value),
                    Literal::DateTime(at) => actual
                        .as_str()
                        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
                        .map(|t| t.cmp(at)),
                };
                match op {
                    Op::Eq => ord == Some(Ordering::Equal),
                    Op::Ne => ord != Some(Ordering::Equal),
                    Op::Gt => ord == Some(Ordering::Greater),
                    Op::Ge => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
                    Op::Lt => ord == Some(Ordering::Less),
                    Op::Le => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
                }
            }
        }
    }
}

/// Property names are matched without regard to case, as the service does.
pub fn lookup<'a>(record: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(record, |v, key| {
        let obj = v.as_object()?;
        obj.get(key).or_else(|| {
            obj.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })
    })
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Some(x.to_lowercase().cmp(&y.to_lowercase())),
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        _ => None,
    }
}

/// A parsed `$orderby`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderBy {
    pub field: String,
    pub descending: bool,
}

impl OrderBy {
    pub fn parse(s: &str) -> Result<OrderBy, String> {
        let mut parts = s.split_whitespace();
        let field = parts.next().ok_or("empty $orderby")?;
        let canonical = ["createdDateTime", "updatedDateTime"]
            .into_iter()
            .find(|f| f.eq_ignore_ascii_case(field))
            .ok_or_else(|| {
                format!("$orderby supports createdDateTime and updatedDateTime, not {field:?}")
            })?;
        let descending = match parts.next().map(str::to_ascii_lowercase).as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => return Err(format!("$orderby direction {other:?}: use asc or desc")),
        };
        Ok(OrderBy {
            field: canonical.to_string(),
            descending,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documented_filters_work() {
        let r = json!({"status": "New", "substatus": "Pending", "direction": "Incoming", "type": "Shared",
                       "customerProfile": {"address": {"country": "US"}}, "details": {"dealValue": 5000}});
        let yes = [
            "status eq 'New' and qualification ne 'SalesQualified'",
            "(type eq 'Shared' and direction eq 'Incoming')",
            "customerProfile/address/country eq 'US' and direction eq 'Incoming'",
            "status eq 'Active' or substatus eq 'Pending'",
            "not (status eq 'Closed') and details/dealValue ge 5000",
            "Status eq 'new'",
        ];
        for f in yes {
            assert!(Filter::parse(f).unwrap().matches(&r), "{f}");
        }
        let no = [
            "status eq 'Closed'",
            "direction eq 'Outgoing' or type eq 'Independent'",
            "details/dealValue gt 5000",
        ];
        for f in no {
            assert!(!Filter::parse(f).unwrap().matches(&r), "{f}");
        }
        // The documented lambda (api-docs/referrals-list.txt).
        let f = Filter::parse("team/any(t:t/email eq 'r2d2@contoso.com')").unwrap();
        let with = serde_json::json!({"team": [{"email": "c3po@contoso.com"}, {"email": "r2d2@contoso.com"}]});
        let without = serde_json::json!({"team": [{"email": "c3po@contoso.com"}]});
        assert!(f.matches(&with) && !f.matches(&without) && !f.matches(&serde_json::json!({})));
        assert!(
            Filter::parse("team/any(t/email eq 'x')").is_err(),
            "no variable"
        );
        assert!(Filter::parse("status eq 'O''Brien'").is_ok());
        // Times against an unquoted DateTimeOffset, Partner Center's seven digits included.
        let r = json!({"updatedDateTime": "2026-11-23T08:00:00.5000000Z"});
        let after = |t: &str| {
            Filter::parse(&format!("updatedDateTime gt {t}"))
                .unwrap()
                .matches(&r)
        };
        assert!(after("2026-11-23T08:00:00Z") && after("2026-11-23T08:00:00.4999999Z"));
        assert!(!after("2026-11-23T08:00:00.5Z") && !after("2026-11-24T00:00:00Z"));
        assert!(Filter::parse("updatedDateTime gt 2026-13-01T00:00:00Z").is_err());
        assert!(Filter::parse("status eq").is_err());
    }

    #[test]
    fn orderby_fields() {
        assert_eq!(
            OrderBy::parse("createdDateTime desc").unwrap(),
            OrderBy {
                field: "createdDateTime".into(),
                descending: true
            }
        );
        assert!(OrderBy::parse("name").is_err());
    }
}
