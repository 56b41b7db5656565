//! Subject tokens (docs/bus.md): the one rule that turns a venue id (or a
//! kind, or a connection id) into one NATS subject token. The processor's
//! subjects, status lines, the archive reader's instrument filter and every
//! Python caller (through `ssmd.core.subject_token`) use [`push_token`].
//!
//! The rule:
//! - `.`, `*`, `>`, `/` and whitespace (Unicode `White_Space`) become `_`;
//! - so do `"`, `\` and control characters (U+0000–U+001F, U+007F–U+009F):
//!   a token is then always a plain JSON string body (the envelope writes the
//!   subject unescaped, and readers compare raw bytes) and never holds a byte
//!   the NATS protocol line cannot carry;
//! - everything else, non-ASCII included, is kept as UTF-8 (`ÉTH/USD` →
//!   `ÉTH_USD`);
//! - a token longer than [`MAX_TOKEN_BYTES`] becomes its first
//!   [`PREFIX_BYTES`] bytes, cut back to a character boundary (so 108 to 111
//!   bytes), then `~` and the first 16 hex digits of the SHA-256 of the whole
//!   (mapped) token: at most 128 bytes, and still unique in practice;
//! - an empty id becomes `_` (a subject token is never empty).
//!
//! The mapping is idempotent: a token maps to itself, so a filter may be
//! given either the venue's spelling (`BTC/USD`) or the token (`BTC_USD`).

use sha2::{Digest, Sha256};

/// Longest token kept as is.
pub const MAX_TOKEN_BYTES: usize = 128;

/// Bytes of a long token kept before `~` and the hash (at most).
pub const PREFIX_BYTES: usize = 111;

/// ASCII bytes that become `_` (see the module docs). 256 entries so that
/// indexing by any byte needs no bounds check (only ASCII is looked up).
static ASCII_MAP: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 128 {
        t[b] = if b <= 0x20 || b == 0x7f {
            b'_'
        } else {
            match b as u8 {
                b'.' | b'*' | b'>' | b'/' | b'"' | b'\\' => b'_',
                c => c,
            }
        };
        b += 1;
    }
    t
};

/// Append the subject token of `id` to `out`.
#[inline]
pub fn push_token(id: &str, out: &mut Vec<u8>) {
    let start = out.len();
    if id.is_ascii() {
        out.extend(id.bytes().map(|b| ASCII_MAP[b as usize]));
    } else {
        let mut buf = [0u8; 4];
        for c in id.chars() {
            if c.is_ascii() {
                out.push(ASCII_MAP[c as usize]);
            } else if c.is_whitespace() || c.is_control() {
                out.push(b'_');
            } else {
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    let len = out.len() - start;
    if len == 0 {
        out.push(b'_');
    } else if len > MAX_TOKEN_BYTES {
        shorten(out, start);
    }
}

/// The subject token of `id` as a `String`.
pub fn token(id: &str) -> String {
    let mut out = Vec::with_capacity(id.len());
    push_token(id, &mut out);
    // only whole characters were replaced, and the cut is on a boundary
    String::from_utf8(out).unwrap_or_default()
}

/// Replace the long token at `out[start..]` by prefix, `~`, hash.
#[cold]
fn shorten(out: &mut Vec<u8>, start: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(&out[start..]);
    let mut cut = start + PREFIX_BYTES;
    // back to the first byte of the character that byte `cut` is in
    while cut > start && (out[cut] & 0xc0) == 0x80 {
        cut -= 1;
    }
    out.truncate(cut);
    out.push(b'~');
    for b in &digest[..8] {
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 15) as usize]);
    }
}

/// Kalshi category token: lower case, anything outside `[a-z0-9-]` → `-`;
/// empty → `unknown` (as a series without one); longer than
/// [`MAX_TOKEN_BYTES`] → cut and hashed as an instrument token is.
pub fn category_token(s: &str) -> String {
    let mut out: Vec<u8> = s
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' {
                c as u8
            } else {
                b'-'
            }
        })
        .collect();
    if out.is_empty() {
        return "unknown".to_owned();
    }
    if out.len() > MAX_TOKEN_BYTES {
        shorten(&mut out, 0);
    }
    // ASCII only: a-z, 0-9, '-', and '~' with hex digits after a cut
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_the_subject_characters() {
        assert_eq!(token("BTC/USD"), "BTC_USD");
        assert_eq!(
            token("KXBTCD-26MAR1317-T65499.99"),
            "KXBTCD-26MAR1317-T65499_99"
        );
        assert_eq!(
            token("a b*c>d\"e\\f\tg\nh\x01i\x7fj"),
            "a_b_c_d_e_f_g_h_i_j"
        );
        assert_eq!(token("ÉTH/USD"), "ÉTH_USD");
        // Unicode whitespace and C1 controls, one `_` per character
        assert_eq!(token("a\u{3000}b\u{a0}c\u{85}d"), "a_b_c_d");
        assert_eq!(token("0xAbC~-_:#"), "0xAbC~-_:#");
        assert_eq!(token(""), "_");
    }

    #[test]
    fn long_tokens_are_cut_and_hashed() {
        let t128 = "a".repeat(128);
        assert_eq!(token(&t128), t128);
        let long = format!("{}.x", "a".repeat(200));
        let t = token(&long);
        assert_eq!(t.len(), 128);
        assert!(t.starts_with(&"a".repeat(111)));
        let mapped = format!("{}_x", "a".repeat(200));
        let digest = Sha256::digest(mapped.as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(t, format!("{}~{hex}", "a".repeat(111)));
        // another long id with the same prefix gets another token
        assert_ne!(token(&format!("{}.y", "a".repeat(200))), t);
    }

    #[test]
    fn long_tokens_cut_on_a_character_boundary() {
        // 110 ASCII bytes, then 2-byte characters: byte 111 is inside one
        let id = format!("{}{}", "a".repeat(110), "é".repeat(40));
        let t = token(&id);
        assert!(t.starts_with(&"a".repeat(110)));
        assert_eq!(t.as_bytes()[110], b'~');
        assert_eq!(t.len(), 127);
        for lead in 0..4 {
            let id = format!("{}{}", "a".repeat(lead), "€".repeat(60));
            let t = token(&id);
            assert!(t.len() <= MAX_TOKEN_BYTES && t.len() >= 125, "{t}");
        }
    }

    #[test]
    fn tokens_map_to_themselves() {
        for id in [
            "BTC/USD",
            "ÉTH/USD",
            "a b",
            "",
            &"x.".repeat(3000),
            &"é ".repeat(100),
        ] {
            let t = token(id);
            assert_eq!(token(&t), t, "{id:?}");
            assert!(t.len() <= MAX_TOKEN_BYTES);
        }
    }

    #[test]
    fn category_tokens() {
        assert_eq!(category_token("Politics"), "politics");
        assert_eq!(
            category_token("Science and Technology"),
            "science-and-technology"
        );
        assert_eq!(category_token("Climate & Weather"), "climate---weather");
        assert_eq!(category_token(""), "unknown");
        let long = category_token(&"Economics ".repeat(500));
        assert!(long.len() <= MAX_TOKEN_BYTES, "{}", long.len());
        assert!(long.starts_with("economics-economics-") && long.contains('~'));
        // two long categories that differ only at the end stay apart
        let other = category_token(&format!("{}x", "Economics ".repeat(500)));
        assert_ne!(long, other);
    }
}
