//! The envelope line (docs/bus.md):
//! `{"rx":<ns>,"conn":"<id>","subj":"<subject>","msg":<message>}`.

use crate::json;

/// Append the malformed body `{"ssmd":"malformed","error":…,"raw":…}` for
/// `raw` (`raw_b64` when it is not valid UTF-8).
pub fn malformed_body(out: &mut Vec<u8>, reason: &str, raw: &[u8]) {
    out.extend_from_slice(b"{\"ssmd\":\"malformed\",\"error\":");
    json::write_str(out, reason.as_bytes());
    if json::is_utf8(raw) {
        out.extend_from_slice(b",\"raw\":");
        json::write_str(out, raw);
    } else {
        out.extend_from_slice(b",\"raw_b64\":\"");
        base64(raw, out);
        out.push(b'"');
    }
    out.push(b'}');
}

/// Standard base64 with padding.
pub fn base64(data: &[u8], out: &mut Vec<u8>) {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(A[(n >> 18) as usize & 63]);
        out.push(A[(n >> 12) as usize & 63]);
        out.push(if chunk.len() > 1 {
            A[(n >> 6) as usize & 63]
        } else {
            b'='
        });
        out.push(if chunk.len() > 2 {
            A[n as usize & 63]
        } else {
            b'='
        });
    }
}

/// Start an envelope line up to and including `"subj":"`; the caller writes
/// the subject, then calls [`finish`].
#[inline]
pub fn begin(out: &mut Vec<u8>, rx: i64, conn_json: &[u8]) {
    out.extend_from_slice(b"{\"rx\":");
    out.extend_from_slice(itoa::Buffer::new().format(rx).as_bytes());
    out.extend_from_slice(b",\"conn\":");
    out.extend_from_slice(conn_json);
    out.extend_from_slice(b",\"subj\":\"");
}

/// Close the subject and append the message and the line end. Returns
/// false when the message had raw line breaks (whitespace between JSON
/// tokens: inside strings they cannot occur) that were turned into spaces so
/// the line stays one line.
#[inline]
pub fn finish(out: &mut Vec<u8>, msg: &[u8]) -> bool {
    out.extend_from_slice(b"\",\"msg\":");
    let verbatim = push_one_line(out, msg);
    out.extend_from_slice(b"}\n");
    verbatim
}

/// Append JSON `value` with raw `\n`/`\r` (only possible as whitespace
/// between tokens of valid JSON) replaced by spaces; false if any were.
#[inline]
pub fn push_one_line(out: &mut Vec<u8>, value: &[u8]) -> bool {
    if memchr::memchr2(b'\n', b'\r', value).is_none() {
        out.extend_from_slice(value);
        return true;
    }
    out.extend(
        value
            .iter()
            .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b }),
    );
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            let mut out = Vec::new();
            base64(i.as_bytes(), &mut out);
            assert_eq!(out, o.as_bytes());
        }
    }

    #[test]
    fn malformed_bodies_are_valid_json() {
        let mut out = Vec::new();
        malformed_body(&mut out, "unexpected end", b"{\"a\":\n");
        assert!(json::parse(&out).is_ok());
        assert!(out.windows(5).any(|w| w == b"\"raw\""));
        out.clear();
        malformed_body(&mut out, "invalid UTF-8", b"\xff\xfe");
        assert!(json::parse(&out).is_ok());
        assert!(out.windows(9).any(|w| w == b"\"raw_b64\""));
    }
}
