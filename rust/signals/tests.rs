//! Engine tests over envelope lines shaped like the archive's.
use std::collections::HashSet;

use super::*;
use crate::model::Venue;

const S: u64 = 1_000_000_000;
const T0: u64 = 1_790_000_000 * S;

fn line(rx: u64, conn: &str, subj: &str, msg: &str) -> String {
    format!(r#"{{"rx":{rx},"conn":"{conn}","subj":"{subj}","msg":{msg}}}"#)
}

fn kalshi_trade(rx: u64, conn: &str, market: &str, price: &str, count: &str, side: &str) -> String {
    let msg = format!(
        r#"{{"type":"trade","sid":1,"seq":1,"msg":{{"trade_id":"t","market_ticker":"{market}","yes_price_dollars":"{price}","count_fp":"{count}","taker_side":"{side}","ts":1790000000}}}}"#
    );
    let token = market.replace('.', "_");
    line(
        rx,
        conn,
        &format!("prod.kalshi.crypto.json.trade.{token}"),
        &msg,
    )
}

fn kraken_trade(rx: u64, symbol: &str, price: &str, qty: &str, kind: &str) -> String {
    let msg = format!(
        r#"{{"channel":"trade","type":"{kind}","data":[{{"symbol":"{symbol}","side":"buy","price":{price},"qty":{qty},"ord_type":"market","trade_id":1,"timestamp":"2026-09-25T17:48:26.844359Z"}}]}}"#
    );
    let token = symbol.replace('/', "_");
    line(rx, "k1", &format!("prod.kraken.json.trade.{token}"), &msg)
}

fn kraken_ticker(rx: u64, symbol: &str, bid: &str, ask: &str) -> String {
    let msg = format!(
        r#"{{"channel":"ticker","type":"update","data":[{{"symbol":"{symbol}","bid":{bid},"bid_qty":1.5,"ask":{ask},"ask_qty":2.5,"last":{bid},"timestamp":"2026-09-25T17:48:26.844359Z"}}]}}"#
    );
    let token = symbol.replace('/', "_");
    line(rx, "k1", &format!("prod.kraken.json.ticker.{token}"), &msg)
}

fn kalshi_lifecycle(rx: u64, market: &str, event: &str) -> String {
    let msg = format!(
        r#"{{"type":"market_lifecycle_v2","sid":3,"seq":1,"msg":{{"market_ticker":"{market}","event_type":"{event}"}}}}"#
    );
    line(
        rx,
        "c1",
        &format!("prod.kalshi.crypto.json.lifecycle.{market}"),
        &msg,
    )
}

fn polymarket_trade(rx: u64, condition: &str, token: &str, price: &str, size: &str) -> String {
    let msg = format!(
        r#"{{"event_type":"last_trade_price","asset_id":"{token}","market":"{condition}","price":"{price}","side":"BUY","size":"{size}","fee_rate_bps":"0","timestamp":"1790000000000"}}"#
    );
    line(
        rx,
        "p1",
        &format!("prod.polymarket.json.trade.{condition}"),
        &msg,
    )
}

fn config(builders: Vec<(&str, Spec)>, trigger: Trigger) -> Config {
    Config {
        signal: "test-sig".into(),
        builders: builders
            .into_iter()
            .map(|(n, s)| (n.to_owned(), s))
            .collect(),
        trigger,
        venues: None,
        instruments: None,
    }
}

fn volume(window: u64) -> Spec {
    Spec::Volume {
        window,
        resolution: 0,
    }
}

fn rule(cfg: &Config, clauses: &[(&str, &str, &str, &str, bool)]) -> Rule {
    Rule {
        clauses: clauses
            .iter()
            .map(|(b, f, op, v, abs)| Clause::new(&cfg.builders, b, f, op, v, *abs).unwrap())
            .collect(),
    }
}

fn run(cfg: &Config, r: &Rule, lines: &[String], chunk: usize) -> (Vec<Fire<Payload>>, Counters) {
    let mut e = Engine::new(cfg.clone());
    let mut r = r.clone();
    let mut out = Vec::new();
    for part in lines.chunks(chunk.max(1)) {
        let mut buf = part.join("\n");
        buf.push('\n');
        e.process(buf.as_bytes(), Mode::RUN, &mut r, &mut out);
    }
    (out, e.counters())
}

fn dollars(f: &Fire<Payload>) -> String {
    match &f.payload[0].1[1] {
        ("dollar_volume", Value::Dec(d)) => fixed::to_text(*d),
        other => panic!("{other:?}"),
    }
}

#[test]
fn volume_threshold_at_the_window_edge() {
    let cfg = config(vec![("volume", volume(60 * S))], Trigger::Edge);
    let r = rule(&cfg, &[("volume", "dollar_volume", ">=", "1000000", false)]);
    // 200 000 $ per trade: 400 000 contracts at $0.50
    let t = |dt: u64| kalshi_trade(T0 + dt, "c1", "KX-A", "0.5000", "400000.00", "yes");
    // four trades, then a fifth exactly 60 s after the first: the first has left
    let lines = vec![t(0), t(10 * S), t(20 * S), t(30 * S), t(60 * S)];
    let (fires, _) = run(&cfg, &r, &lines, 100);
    assert!(fires.is_empty(), "{fires:?}");
    // the fifth 1 ns earlier: the first is still in, $1,000,000 exactly
    let lines = vec![t(0), t(10 * S), t(20 * S), t(30 * S), t(60 * S - 1)];
    let (fires, c) = run(&cfg, &r, &lines, 100);
    assert_eq!(fires.len(), 1);
    assert_eq!(dollars(&fires[0]), "1000000");
    assert_eq!(fires[0].rx, T0 + 60 * S - 1);
    assert_eq!(c.records, 5);
    assert_eq!(c.evaluations, 5);
}

#[test]
fn rising_edge_fires_once_and_rearms_when_it_falls() {
    let cfg = config(vec![("volume", volume(10 * S))], Trigger::Edge);
    let r = rule(&cfg, &[("volume", "dollar_volume", ">=", "100", false)]);
    let t = |dt: u64, c: &str| kalshi_trade(T0 + dt, "c1", "KX-A", "0.5000", c, "yes");
    let lines = vec![
        t(0, "300.00"),      // 150 $: fires
        t(S, "2.00"),        // still above: no fire
        t(20 * S, "2.00"),   // window emptied, 1 $: falls, re-armed
        t(21 * S, "300.00"), // 151 $: fires again
    ];
    let (fires, c) = run(&cfg, &r, &lines, 100);
    let rxs: Vec<u64> = fires.iter().map(|f| f.rx).collect();
    assert_eq!(rxs, [T0, T0 + 21 * S]);
    assert_eq!(c.fires, 2);
    // edges are per instrument: another market fires on its own
    let mut lines = lines;
    lines.insert(
        1,
        kalshi_trade(T0 + 1, "c1", "KX-B", "0.5000", "300.00", "no"),
    );
    let (fires, _) = run(&cfg, &r, &lines, 100);
    let names: Vec<&str> = fires.iter().map(|f| &*f.instrument).collect();
    assert_eq!(names, ["KX-A", "KX-B", "KX-A"]);
}

#[test]
fn fires_do_not_depend_on_chunking() {
    let cfg = config(vec![("volume", volume(S))], Trigger::Edge);
    let r = rule(&cfg, &[("volume", "dollar_volume", ">=", "1300", false)]);
    let mut lines = Vec::new();
    for i in 0..400u64 {
        let m = ["KX-A", "KX-B", "KX-C"][(i % 3) as usize];
        let c = format!("{}.00", 10 + (i * i * 37) % 900);
        // several lines share a receive time, as in one batch of frames
        lines.push(kalshi_trade(
            T0 + (i / 4) * S / 3,
            "c1",
            m,
            "0.5500",
            &c,
            "yes",
        ));
    }
    let (whole, _) = run(&cfg, &r, &lines, 1000);
    assert!(whole.len() > 10, "{}", whole.len());
    for chunk in [1, 2, 3, 7, 64, 399] {
        let (f, _) = run(&cfg, &r, &lines, chunk);
        assert_eq!(f, whole, "chunk {chunk}");
    }
}

#[test]
fn message_ids_name_the_record_whatever_the_filter() {
    let cfg = config(vec![("volume", volume(60 * S))], Trigger::Edge);
    let r = rule(&cfg, &[("volume", "dollar_volume", ">=", "1", false)]);
    // three lines at the same rx on c1, one on c2
    let lines = vec![
        kalshi_trade(T0, "c1", "KX-A", "0.5000", "10.00", "yes"),
        kalshi_trade(T0, "c1", "KX-B", "0.5000", "10.00", "yes"),
        kalshi_trade(T0, "c2", "KX-C", "0.5000", "10.00", "yes"),
        kalshi_trade(T0, "c1", "KX-D.5", "0.5000", "10.00", "yes"),
    ];
    let (fires, _) = run(&cfg, &r, &lines, 100);
    let ids: Vec<&str> = fires.iter().map(|f| f.msg_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            format!("test-sig:kalshi:c1:{T0}.0"),
            format!("test-sig:kalshi:c1:{T0}.1"),
            format!("test-sig:kalshi:c2:{T0}.0"),
            format!("test-sig:kalshi:c1:{T0}.2"),
        ]
    );
    assert_eq!(fires[3].subject, "signals.test-sig.KX-D_5");
    assert_eq!(&*fires[3].instrument, "KX-D.5");
    // an instrument filter (raw id or token) keeps the ids
    let mut filtered = cfg.clone();
    filtered.instruments = Some(HashSet::from([b"KX-D_5".to_vec()]));
    let (fires, c) = run(&filtered, &r, &lines, 100);
    assert_eq!(fires.len(), 1);
    assert_eq!(fires[0].msg_id, format!("test-sig:kalshi:c1:{T0}.2"));
    assert_eq!(c.filtered, 3);
}

#[test]
fn a_late_line_does_not_restart_the_numbering() {
    let cfg = config(vec![("volume", volume(60 * S))], Trigger::Record);
    let r = rule(&cfg, &[("volume", "trades", ">=", "1", false)]);
    let t = |rx: u64, m: &str| kalshi_trade(rx, "c1", m, "0.5000", "10.00", "yes");
    // T0+2 twice, then a late T0+1, then T0+2 again: its index goes on from 2
    let lines = vec![
        t(T0 + 2, "A"),
        t(T0 + 2, "B"),
        t(T0 + 1, "C"),
        t(T0 + 2, "D"),
    ];
    let (fires, _) = run(&cfg, &r, &lines, 100);
    let ids: Vec<&str> = fires
        .iter()
        .map(|f| f.msg_id.rsplit(':').next().unwrap())
        .collect();
    let (a, b) = (T0 + 2, T0 + 1);
    assert_eq!(
        ids,
        [
            format!("{a}.0"),
            format!("{a}.1"),
            format!("{b}.0"),
            format!("{a}.2")
        ]
    );
}

#[test]
fn source_seq_and_fire_fields() {
    let cfg = config(vec![("volume", volume(60 * S))], Trigger::Edge);
    let r = rule(&cfg, &[("volume", "trades", ">=", "1", false)]);
    let l = kalshi_trade(T0, "c1", "KX-A", "0.5000", "10.00", "yes").replacen(
        ",\"conn\"",
        ",\"seq\":[42,3],\"conn\"",
        1,
    );
    let (fires, _) = run(&cfg, &r, &[l], 1);
    let f = &fires[0];
    assert_eq!(
        f.source_seq,
        Some(crate::archive::Seq {
            stream: 42,
            index: Some(3)
        })
    );
    assert_eq!(f.ts, Some(1_790_000_000_000_000_000));
    assert_eq!(f.venue, Venue::Kalshi);
    let names: Vec<&str> = f.payload[0].1.iter().map(|(k, _)| *k).collect();
    assert_eq!(names, builders::VOLUME_FIELDS);
}

#[test]
fn kraken_usd_only_and_snapshots_skipped() {
    let cfg = config(vec![("volume", volume(60 * S))], Trigger::Edge);
    let r = rule(&cfg, &[("volume", "dollar_volume", ">=", "50000", false)]);
    let lines = vec![
        kraken_trade(T0, "BTC/USD", "84000.0", "1.0", "snapshot"), // replay on subscribe
        kraken_trade(T0 + 1, "BTC/EUR", "80000.0", "1.0", "update"), // not USD
        kraken_trade(T0 + 2, "BTC/USD", "84000.0", "0.5", "update"), // 42 000 $
        kraken_trade(T0 + 3, "BTC/USD", "84000.0", "0.1", "update"), // 50 400 $
    ];
    let (fires, c) = run(&cfg, &r, &lines, 100);
    assert_eq!(c.snapshot_lines, 1);
    assert_eq!(c.not_usd, 1);
    assert_eq!(fires.len(), 1);
    assert_eq!(&*fires[0].instrument, "BTC/USD");
    assert_eq!(dollars(&fires[0]), "50400");
}

#[test]
fn price_jump_on_the_mid() {
    let spec = Spec::Price {
        window: 60 * S,
        resolution: 0,
    };
    let cfg = config(vec![("price", spec)], Trigger::Edge);
    let r = rule(&cfg, &[("price", "change_pct", ">=", "0.05", true)]);
    let lines = vec![
        kraken_ticker(T0, "ETH/USD", "99", "101"),        // mid 100
        kraken_ticker(T0 + S, "ETH/USD", "103", "105"),   // +4 %
        kraken_ticker(T0 + 2 * S, "ETH/USD", "94", "96"), // −5 %: fires
        kraken_ticker(T0 + 3 * S, "ETH/USD", "93", "95"), // −6 %: still high
        kraken_ticker(T0 + 70 * S, "ETH/USD", "93", "95"), // window reset: 0 %
        kraken_ticker(T0 + 71 * S, "ETH/USD", "99.5", "100.5"), // +6.4 %: fires
    ];
    let (fires, _) = run(&cfg, &r, &lines, 2);
    assert_eq!(fires.len(), 2);
    let view = &fires[0].payload[0].1;
    let get = |k: &str| view.iter().find(|(f, _)| *f == k).unwrap().1.clone();
    assert_eq!(get("mid"), Value::Dec(95 * fixed::ONE));
    assert_eq!(get("first"), Value::Dec(100 * fixed::ONE));
    assert_eq!(get("high"), Value::Dec(104 * fixed::ONE));
    assert_eq!(get("low"), Value::Dec(95 * fixed::ONE));
    assert_eq!(get("quotes"), Value::Int(3));
    assert_eq!(fires[1].rx, T0 + 71 * S);
}

#[test]
fn lifecycle_fires_on_every_matching_event() {
    let cfg = config(vec![("lifecycle", Spec::Lifecycle)], Trigger::Record);
    let r = rule(
        &cfg,
        &[("lifecycle", "phase", "in", "open,close,settle", false)],
    );
    let lines = vec![
        kalshi_lifecycle(T0, "KX-A", "created"),
        kalshi_lifecycle(T0 + 1, "KX-A", "activated"),
        kalshi_lifecycle(T0 + 2, "KX-A", "metadata_updated"),
        kalshi_lifecycle(T0 + 3, "KX-A", "deactivated"),
        kalshi_lifecycle(T0 + 4, "KX-A", "determined"),
        kalshi_lifecycle(T0 + 5, "KX-A", "settled"),
    ];
    let (fires, _) = run(&cfg, &r, &lines, 3);
    let events: Vec<String> = fires
        .iter()
        .map(|f| f.payload[0].1[0].1.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        events,
        ["activated", "deactivated", "determined", "settled"]
    );
}

#[test]
fn warm_up_builds_state_without_firing() {
    let cfg = config(vec![("volume", volume(60 * S))], Trigger::Edge);
    let mut r = rule(&cfg, &[("volume", "dollar_volume", ">=", "100", false)]);
    let a = kalshi_trade(T0, "c1", "KX-A", "0.5000", "150.00", "yes") + "\n";
    let b = kalshi_trade(T0 + S, "c1", "KX-A", "0.5000", "150.00", "yes") + "\n";
    let mut e = Engine::new(cfg.clone());
    let mut out = Vec::new();
    let warm = Mode {
        evaluate: false,
        fire: false,
    };
    e.process(a.as_bytes(), warm, &mut r, &mut out);
    assert!(out.is_empty());
    e.process(b.as_bytes(), Mode::RUN, &mut r, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(dollars(&out[0]), "150");
    // restored edge state suppresses the fire
    let mut e = Engine::new(cfg);
    e.process(a.as_bytes(), warm, &mut r, &mut out);
    e.set_high(Venue::Kalshi, "KX-A", true);
    out.clear();
    e.process(b.as_bytes(), Mode::RUN, &mut r, &mut out);
    assert!(out.is_empty());
}

#[test]
fn a_restored_token_is_chosen_by_its_condition() {
    // `--instrument <condition id>`: a token whose edge state was restored
    // before any of its lines was seen is still chosen by its subject
    let mut cfg = config(vec![("volume", volume(60 * S))], Trigger::Edge);
    cfg.instruments = Some(HashSet::from([b"0xc0nd".to_vec()]));
    let mut r = rule(&cfg, &[("volume", "dollar_volume", ">=", "100", false)]);
    let mut e = Engine::new(cfg);
    e.set_high(Venue::Polymarket, "111", false);
    e.set_high(Venue::Polymarket, "222", true);
    let mut out = Vec::new();
    let lines = [
        polymarket_trade(T0, "0xc0nd", "111", "0.5", "300"),
        polymarket_trade(T0, "0xc0nd", "222", "0.5", "300"),
        polymarket_trade(T0, "0xother", "333", "0.5", "300"),
    ]
    .join("\n");
    e.process(lines.as_bytes(), Mode::RUN, &mut r, &mut out);
    let fired: Vec<&str> = out.iter().map(|f| &*f.instrument).collect();
    assert_eq!(fired, ["111"]);
    assert_eq!(e.counters().filtered, 1);
    // 222 was restored high: it re-arms when it falls, then fires again
    e.process(
        polymarket_trade(T0 + 61 * S, "0xc0nd", "222", "0.5", "1").as_bytes(),
        Mode::RUN,
        &mut r,
        &mut out,
    );
    e.process(
        polymarket_trade(T0 + 62 * S, "0xc0nd", "222", "0.5", "300").as_bytes(),
        Mode::RUN,
        &mut r,
        &mut out,
    );
    let fired: Vec<&str> = out.iter().map(|f| &*f.instrument).collect();
    assert_eq!(fired, ["111", "222"]);
}

#[test]
fn bad_lines_and_gaps_are_counted() {
    let cfg = config(vec![("volume", volume(60 * S))], Trigger::Edge);
    let r = rule(&cfg, &[("volume", "trades", ">=", "1", false)]);
    let gap = line(
        T0,
        "archiver-1",
        "prod.kalshi.json.status.archiver",
        r#"{"ssmd":"gap","reason":"stream","from":6,"to":25,"missing":20}"#,
    );
    let lines = vec![
        "not json".to_owned(),
        gap,
        kalshi_trade(T0, "c1", "KX-A", "nan", "1.00", "yes"),
        line(T0, "c1", "prod.kalshi.crypto.json.trade.X", "{"),
    ];
    let (fires, c) = run(&cfg, &r, &lines, 1);
    assert!(fires.is_empty());
    assert_eq!(c.bad_lines, 1);
    assert_eq!(c.gaps, 1);
    assert_eq!(c.unreadable, 1);
    assert_eq!(c.lines, 4);
}

#[test]
fn rules_check_their_fields() {
    let cfg = config(vec![("volume", volume(S))], Trigger::Edge);
    let err = |b, f, op, v| {
        Clause::new(&cfg.builders, b, f, op, v, false)
            .unwrap_err()
            .0
    };
    assert!(err("vol", "trades", ">=", "1").contains("no declared builder"));
    assert!(err("volume", "nope", ">=", "1").contains("has no field"));
    assert!(err("volume", "trades", "=~", "1").contains("bad operator"));
    assert!(err("volume", "trades", ">=", "x").contains("bad number"));
    assert!(err("volume", "trades", "in", "1").contains("is for text"));
}
