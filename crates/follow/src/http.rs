//! A minimal HTTP/1.1 client over `std::net::TcpStream`: one POST per connection. Bitcoin
//! Core's RPC server and webhook receivers need nothing more, and this keeps the follower free
//! of a TLS/HTTP stack (plain http only: RPC stays on a trusted network, webhooks behind a
//! local relay if they need TLS).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub host: String,
    pub port: u16,
    pub path: String,
    /// user:password embedded in the URL, if any.
    pub userinfo: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("bad URL {0:?}: {1}")]
    BadUrl(String, String),
    #[error("cannot connect to {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0}: malformed HTTP response: {1}")]
    Malformed(String, String),
}

impl Url {
    pub fn parse(s: &str) -> Result<Url, HttpError> {
        let bad = |m: &str| HttpError::BadUrl(s.to_string(), m.to_string());
        let rest = if let Some(r) = s.strip_prefix("http://") {
            r
        } else if s.starts_with("https://") {
            return Err(bad("https is not supported: use http:// (RPC belongs on a trusted network; put a TLS relay in front of remote webhooks)"));
        } else if s.contains("://") {
            return Err(bad("only http:// URLs are supported"));
        } else {
            s
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(authority[..i].to_string()), &authority[i + 1..]),
            None => (None, authority),
        };
        let (host, port) = match hostport.rfind(':') {
            Some(i) if !hostport[i + 1..].contains(']') => {
                let p = hostport[i + 1..]
                    .parse::<u16>()
                    .map_err(|_| bad("port is not a number 0-65535"))?;
                (&hostport[..i], p)
            }
            _ => (hostport, 80),
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(Url {
            host: host.trim_matches(['[', ']']).to_string(),
            port,
            path: path.to_string(),
            userinfo,
        })
    }

    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// POST `body` and read the whole response. `timeout` bounds connecting and each read.
pub fn post(
    url: &Url,
    headers: &[(&str, String)],
    body: &[u8],
    timeout: Duration,
) -> Result<Response, HttpError> {
    let who = url.authority();
    let addrs: Vec<_> = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| HttpError::Connect(who.clone(), e))?
        .collect();
    let mut last = None;
    let mut stream = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let mut stream = stream.ok_or_else(|| {
        HttpError::Connect(
            who.clone(),
            last.unwrap_or_else(|| std::io::Error::other("no address")),
        )
    })?;
    let io = |e| HttpError::Io(who.clone(), e);
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    stream.set_nodelay(true).map_err(io)?;
    let mut req = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        url.path,
        who,
        body.len()
    );
    for (k, v) in headers {
        req.push_str(k);
        req.push_str(": ");
        req.push_str(v);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    let mut buf = req.into_bytes();
    buf.extend_from_slice(body);
    stream.write_all(&buf).map_err(io)?;
    read_response(&mut BufReader::new(stream), &who)
}

fn read_response<R: BufRead>(r: &mut R, who: &str) -> Result<Response, HttpError> {
    let io = |e| HttpError::Io(who.to_string(), e);
    let bad = |m: String| HttpError::Malformed(who.to_string(), m);
    let mut line = String::new();
    r.read_line(&mut line).map_err(io)?;
    if line.is_empty() {
        return Err(bad("connection closed before a status line".into()));
    }
    let mut parts = line.split_whitespace();
    let proto = parts.next().unwrap_or("");
    if !proto.starts_with("HTTP/1.") {
        return Err(bad(format!("status line {:?}", line.trim_end())));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("status line {:?}", line.trim_end())))?;
    let mut len: Option<usize> = None;
    let mut chunked = false;
    loop {
        line.clear();
        r.read_line(&mut line).map_err(io)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "content-length" {
                len = Some(
                    v.parse()
                        .map_err(|_| bad(format!("Content-Length {v:?}")))?,
                );
            } else if k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked") {
                chunked = true;
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line).map_err(io)?;
            let size_s = line.trim_end().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size_s.trim(), 16)
                .map_err(|_| bad(format!("chunk size {size_s:?}")))?;
            if size == 0 {
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..]).map_err(io)?;
            line.clear();
            r.read_line(&mut line).map_err(io)?;
        }
    } else if let Some(n) = len {
        body.resize(n, 0);
        r.read_exact(&mut body).map_err(io)?;
    } else {
        r.read_to_end(&mut body).map_err(io)?;
    }
    Ok(Response { status, body })
}

/// Standard base64 (for Basic auth).
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let u = Url::parse("http://127.0.0.1:18443").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 18443, "/")
        );
        let u = Url::parse("alice:pw@node:8332/wallet/x").unwrap();
        assert_eq!(u.userinfo.as_deref(), Some("alice:pw"));
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("node", 8332, "/wallet/x")
        );
        assert!(Url::parse("https://x").is_err());
        assert!(Url::parse("http://x:99999").is_err());
    }

    #[test]
    fn base64_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn reads_chunked_and_sized_bodies() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let r = read_response(&mut &raw[..], "t").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"abcde"[..]));
        let raw = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\n\r\nnoEXTRA";
        let r = read_response(&mut &raw[..], "t").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (401, &b"no"[..]));
        assert!(read_response(&mut &b"garbage\r\n\r\n"[..], "t").is_err());
    }
}
