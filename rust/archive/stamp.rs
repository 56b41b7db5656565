//! The archiver's `seq` stamp (docs/bus.md): a bus message of one or more
//! envelope lines gets `"seq":M` (one line) or `"seq":[M,i]` (line `i` of a
//! micro-batch) inserted right after `"rx"`, M being the JetStream stream
//! sequence. A line that is not an envelope is kept, wrapped in a
//! `kind=malformed` envelope of the archiver's own subject, and counted.
use super::line::parse_rx_seq;
use crate::envelope::malformed_body;

/// Result of [`stamp`]: the `\n`-terminated lines and how many were not
/// envelopes.
#[derive(Debug, Default)]
pub struct Stamped {
    pub data: Vec<u8>,
    pub lines: u64,
    pub bad: u64,
}

fn push_seq(out: &mut Vec<u8>, seq: u64, index: Option<usize>) {
    let mut b = itoa::Buffer::new();
    out.extend_from_slice(b",\"seq\":");
    match index {
        None => out.extend_from_slice(b.format(seq).as_bytes()),
        Some(i) => {
            out.push(b'[');
            out.extend_from_slice(b.format(seq).as_bytes());
            out.push(b',');
            out.extend_from_slice(b.format(i).as_bytes());
            out.push(b']');
        }
    }
}

/// Stamp every line of every `(stream_seq, payload)` message into `out`.
///
/// `bad_subject` and `bad_conn` (already JSON-safe tokens) name the envelope
/// of lines that are not envelopes; `rx` is their receive time.
pub fn stamp<'a, I>(messages: I, bad_subject: &str, bad_conn: &str, rx: u64, out: &mut Stamped)
where
    I: IntoIterator<Item = (u64, &'a [u8])>,
{
    for (seq, payload) in messages {
        let body = payload.strip_suffix(b"\n").unwrap_or(payload);
        if body.iter().all(|&c| c == b'\n' || c == b'\r') {
            // nothing to archive, yet the sequence was consumed: say so, or a
            // reader would take it for a message lost on the way
            out.lines += 1;
            out.bad += 1;
            push_bad(
                &mut out.data,
                seq,
                None,
                bad_subject,
                bad_conn,
                rx,
                "empty message",
                payload,
            );
            continue;
        }
        let multi = memchr::memchr(b'\n', body).is_some();
        let mut index = 0usize;
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', body).chain([body.len()]) {
            let line = &body[start..end];
            start = end + 1;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            let idx = if multi { Some(index) } else { None };
            index += 1;
            out.lines += 1;
            let d = &mut out.data;
            match parse_rx_seq(line) {
                Some(head) if line.ends_with(b"}") => {
                    let rx_end = br#"{"rx":"#.len()
                        + line[br#"{"rx":"#.len()..]
                            .iter()
                            .take_while(|c| c.is_ascii_digit())
                            .count();
                    d.extend_from_slice(&line[..rx_end]);
                    push_seq(d, seq, idx);
                    d.extend_from_slice(&line[head.rest..]);
                }
                _ => {
                    out.bad += 1;
                    push_bad(
                        d,
                        seq,
                        idx,
                        bad_subject,
                        bad_conn,
                        rx,
                        "not an envelope line",
                        line,
                    );
                    continue;
                }
            }
            out.data.push(b'\n');
        }
    }
}

/// A `kind=malformed` envelope line (with its newline) keeping `raw`.
#[allow(clippy::too_many_arguments)]
fn push_bad(
    d: &mut Vec<u8>,
    seq: u64,
    idx: Option<usize>,
    bad_subject: &str,
    bad_conn: &str,
    rx: u64,
    reason: &str,
    raw: &[u8],
) {
    d.extend_from_slice(b"{\"rx\":");
    d.extend_from_slice(itoa::Buffer::new().format(rx).as_bytes());
    push_seq(d, seq, idx);
    d.extend_from_slice(b",\"conn\":\"");
    d.extend_from_slice(bad_conn.as_bytes());
    d.extend_from_slice(b"\",\"subj\":\"");
    d.extend_from_slice(bad_subject.as_bytes());
    d.extend_from_slice(b"\",\"msg\":");
    malformed_body(d, reason, raw);
    d.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(msgs: &[(u64, &[u8])]) -> Stamped {
        let mut out = Stamped::default();
        stamp(
            msgs.iter().copied(),
            "prod.kraken.json.malformed.archiver",
            "archiver",
            7,
            &mut out,
        );
        out
    }

    #[test]
    fn single_and_multi_line_messages() {
        let out = run(&[
            (5, br#"{"rx":1,"conn":"c","subj":"s","msg":{}}"#),
            (
                6,
                b"{\"rx\":2,\"conn\":\"c\",\"subj\":\"s\",\"msg\":1}\n{\"rx\":3,\"conn\":\"c\",\"subj\":\"s\",\"msg\":2}\n",
            ),
        ]);
        let text = String::from_utf8(out.data).unwrap();
        assert_eq!(
            text,
            "{\"rx\":1,\"seq\":5,\"conn\":\"c\",\"subj\":\"s\",\"msg\":{}}\n\
             {\"rx\":2,\"seq\":[6,0],\"conn\":\"c\",\"subj\":\"s\",\"msg\":1}\n\
             {\"rx\":3,\"seq\":[6,1],\"conn\":\"c\",\"subj\":\"s\",\"msg\":2}\n"
        );
        assert_eq!((out.lines, out.bad), (3, 0));
    }

    #[test]
    fn an_existing_seq_is_replaced() {
        let out = run(&[(9, br#"{"rx":1,"seq":[3,1],"conn":"c","subj":"s","msg":0}"#)]);
        assert_eq!(
            out.data,
            b"{\"rx\":1,\"seq\":9,\"conn\":\"c\",\"subj\":\"s\",\"msg\":0}\n".to_vec()
        );
    }

    #[test]
    fn an_empty_message_is_recorded() {
        let out = run(&[
            (3, b""),
            (4, b"\n"),
            (5, br#"{"rx":1,"conn":"c","subj":"s","msg":{}}"#),
        ]);
        assert_eq!((out.lines, out.bad), (3, 2));
        let text = String::from_utf8(out.data).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (l, seq) in lines[..2].iter().zip(["3", "4"]) {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["seq"].to_string(), seq);
            assert_eq!(v["msg"]["ssmd"], "malformed");
            assert_eq!(v["msg"]["error"], "empty message");
        }
        assert!(lines[2].starts_with(r#"{"rx":1,"seq":5,"#));
    }

    #[test]
    fn non_envelopes_are_wrapped_and_counted() {
        let out = run(&[(1, b"hello \xff"), (2, br#"{"rx":x}"#)]);
        assert_eq!(out.bad, 2);
        let text = String::from_utf8(out.data).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        for (l, seq) in lines.iter().zip(["1", "2"]) {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["seq"].to_string(), seq);
            assert_eq!(v["subj"], "prod.kraken.json.malformed.archiver");
            assert_eq!(v["msg"]["ssmd"], "malformed");
        }
        assert!(lines[0].contains("raw_b64"));
        assert!(lines[1].contains(r#""raw":"{\"rx\":x}""#));
    }
}
