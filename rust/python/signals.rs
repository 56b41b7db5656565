//! Bindings for the signal engine (`crate::signals`).
//!
//! A `SignalEngine` runs one signal over chunks of envelope lines. A
//! signal with a rule is evaluated in Rust with the GIL released; any other
//! is evaluated by calling its Python `evaluate(state)` (and, on a fire,
//! `payload(state)`) with a `SignalState`: the instrument, the record's
//! times and one `BuilderView` per declared builder, read as attributes
//! (`state.volume.dollar_volume`).
use std::collections::HashSet;
use std::sync::Arc;

use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::archive::Seq;
use crate::error::Error;
use crate::model::Venue;
use crate::python::archive::ArchiveReader;
use crate::signals::{
    payload_of, Clause, Config, Ctx, Engine, Evaluator, Fire, Mode, Payload, Rule, Spec, Trigger,
    Value,
};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SignalEngine>()?;
    m.add_class::<SignalState>()?;
    m.add_class::<BuilderView>()?;
    Ok(())
}

fn config_err(msg: String) -> PyErr {
    Error::Config(msg).into()
}

fn value_py(py: Python<'_>, v: &Value) -> PyResult<PyObject> {
    Ok(match v {
        Value::Null => py.None(),
        Value::Dec(_) | Value::Float(_) => v
            .as_f64()
            .unwrap_or(f64::NAN)
            .into_pyobject(py)?
            .into_any()
            .unbind(),
        Value::Int(i) => i.into_pyobject(py)?.into_any().unbind(),
        Value::Str(s) => s.into_pyobject(py)?.into_any().unbind(),
    })
}

fn fields_dict<'py>(
    py: Python<'py>,
    fields: &[(&'static str, Value)],
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in fields {
        d.set_item(*k, value_py(py, v)?)?;
    }
    Ok(d)
}

/// A payload as a dict: the fields of the one builder, or one dict per
/// builder name when there are several.
fn payload_dict<'py>(py: Python<'py>, p: &Payload) -> PyResult<Bound<'py, PyDict>> {
    if let [(_, fields)] = p.as_slice() {
        return fields_dict(py, fields);
    }
    let d = PyDict::new(py);
    for (name, fields) in p {
        d.set_item(name, fields_dict(py, fields)?)?;
    }
    Ok(d)
}

fn seq_py(py: Python<'_>, s: Option<Seq>) -> PyResult<PyObject> {
    Ok(match s {
        None => py.None(),
        Some(Seq {
            stream,
            index: None,
        }) => stream.into_pyobject(py)?.into_any().unbind(),
        Some(Seq {
            stream,
            index: Some(i),
        }) => PyTuple::new(py, [stream, i])?.into_any().unbind(),
    })
}

/// The views of one builder at one record.
#[pyclass(frozen, module = "ssmd._core")]
pub struct BuilderView {
    kind: &'static str,
    fields: Vec<(&'static str, Value)>,
}

#[pymethods]
impl BuilderView {
    /// `volume_profile`, `price_profile`, `spread` or `lifecycle`.
    #[getter]
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn __getattr__(&self, py: Python<'_>, name: &str) -> PyResult<PyObject> {
        match self.fields.iter().find(|(k, _)| *k == name) {
            Some((_, v)) => value_py(py, v),
            None => Err(pyo3::exceptions::PyAttributeError::new_err(format!(
                "{} has no field {name:?} (fields: {})",
                self.kind,
                self.fields
                    .iter()
                    .map(|(k, _)| *k)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Every field, in order.
    fn as_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        fields_dict(py, &self.fields)
    }

    fn __repr__(&self) -> String {
        let f: Vec<String> = self
            .fields
            .iter()
            .map(|(k, v)| match v {
                Value::Null => format!("{k}=None"),
                Value::Str(s) => format!("{k}={s:?}"),
                Value::Int(i) => format!("{k}={i}"),
                other => format!("{k}={}", other.as_f64().unwrap_or(f64::NAN)),
            })
            .collect();
        format!("<{} {}>", self.kind, f.join(" "))
    }
}

/// The state a Python `evaluate` sees: one record's instrument.
#[pyclass(frozen, module = "ssmd._core")]
pub struct SignalState {
    venue: &'static str,
    instrument: Arc<str>,
    rx: u64,
    ts: Option<i64>,
    record: &'static str,
    names: Arc<[String]>,
    kinds: Vec<&'static str>,
    payload: Payload,
}

#[pymethods]
impl SignalState {
    #[getter]
    fn venue(&self) -> &'static str {
        self.venue
    }
    #[getter]
    fn instrument(&self) -> &str {
        &self.instrument
    }
    /// Receive time of the record (ns since the epoch).
    #[getter]
    fn rx(&self) -> u64 {
        self.rx
    }
    /// Exchange time of the record (ns since the epoch), if it has one.
    #[getter]
    fn ts(&self) -> Option<i64> {
        self.ts
    }
    /// `trade`, `quote` or `lifecycle`.
    #[getter]
    fn record(&self) -> &'static str {
        self.record
    }

    fn __getattr__(&self, name: &str) -> PyResult<BuilderView> {
        match self.names.iter().position(|n| n == name) {
            Some(i) => Ok(BuilderView {
                kind: self.kinds[i],
                fields: self.payload[i].1.clone(),
            }),
            None => Err(pyo3::exceptions::PyAttributeError::new_err(format!(
                "the signal declared no builder {name:?} (declared: {})",
                self.names.join(", ")
            ))),
        }
    }

    /// The default payload: every field of the one builder, or a dict per
    /// builder when there are several.
    fn payload<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        payload_dict(py, &self.payload)
    }

    fn __repr__(&self) -> String {
        format!(
            "<SignalState {} {} rx={} builders={}>",
            self.venue,
            self.instrument,
            self.rx,
            self.names.join(",")
        )
    }
}

/// Calls a signal's Python `evaluate` and `payload`.
struct PyEval<'py> {
    py: Python<'py>,
    evaluate: Bound<'py, PyAny>,
    payload: Bound<'py, PyAny>,
    names: Arc<[String]>,
    /// A `BaseException` that is not an `Exception` (KeyboardInterrupt):
    /// raised once the chunk is done.
    fatal: Option<PyErr>,
}

impl PyEval<'_> {
    fn state(&self, ctx: &Ctx<'_>) -> SignalState {
        SignalState {
            venue: ctx.venue.as_str(),
            instrument: Arc::from(ctx.instrument),
            rx: ctx.rx,
            ts: ctx.ts,
            record: ctx.record,
            names: self.names.clone(),
            kinds: ctx.builders.iter().map(|(_, s)| s.kind()).collect(),
            payload: payload_of(ctx),
        }
    }

    /// `file:line: Type: message` of an exception, at its innermost frame.
    fn describe(&mut self, e: PyErr) -> String {
        let py = self.py;
        if !e.is_instance_of::<PyException>(py) {
            let text = e.to_string();
            self.fatal.get_or_insert(e);
            return text;
        }
        let mut place = String::new();
        if let Some(mut tb) = e.traceback(py) {
            while let Ok(Some(next)) = tb
                .getattr("tb_next")
                .and_then(|n| n.extract::<Option<Bound<'_, pyo3::types::PyTraceback>>>())
            {
                tb = next;
            }
            let line = tb.getattr("tb_lineno").and_then(|l| l.extract::<i64>());
            let file = tb
                .getattr("tb_frame")
                .and_then(|f| f.getattr("f_code"))
                .and_then(|c| c.getattr("co_filename"))
                .and_then(|f| f.extract::<String>());
            if let (Ok(file), Ok(line)) = (file, line) {
                place = format!("{file}:{line}: ");
            }
        }
        let ty = e
            .get_type(py)
            .name()
            .map_or_else(|_| "Exception".into(), |n| n.to_string());
        format!("{place}{ty}: {}", e.value(py))
    }
}

impl Evaluator for PyEval<'_> {
    type Payload = PyObject;

    fn evaluate(&mut self, ctx: &Ctx<'_>) -> Result<bool, String> {
        if self.fatal.is_some() {
            return Ok(false);
        }
        let state = self.state(ctx);
        let r = self.evaluate.call1((state,)).and_then(|v| v.is_truthy());
        r.map_err(|e| self.describe(e))
    }

    fn payload(&mut self, ctx: &Ctx<'_>) -> Result<PyObject, String> {
        if self.fatal.is_some() {
            return Err("interrupted".into());
        }
        let state = self.state(ctx);
        let r = self.payload.call1((state,)).and_then(|p| {
            if p.is_instance_of::<PyDict>() {
                Ok(p.unbind())
            } else {
                Err(pyo3::exceptions::PyTypeError::new_err(format!(
                    "payload() must return a dict, not {}",
                    p.get_type()
                        .name()
                        .map_or_else(|_| "?".into(), |n| n.to_string())
                )))
            }
        });
        r.map_err(|e| self.describe(e))
    }
}

/// `(builder, field, op, value, abs)`.
type RuleClause = (String, String, String, String, bool);

type FireTuple = (
    String,
    String,
    &'static str,
    String,
    Option<i64>,
    u64,
    PyObject,
    PyObject,
);

fn fire_tuple(py: Python<'_>, f: Fire<PyObject>) -> PyResult<FireTuple> {
    Ok((
        f.msg_id,
        f.subject,
        f.venue.as_str(),
        f.instrument.to_string(),
        f.ts,
        f.rx,
        seq_py(py, f.source_seq)?,
        f.payload,
    ))
}

/// One signal's engine: envelope lines in, fires out.
#[pyclass(module = "ssmd._core")]
pub struct SignalEngine {
    engine: Engine,
    rule: Option<Rule>,
    evaluate: Option<Py<PyAny>>,
    payload: Option<Py<PyAny>>,
    names: Arc<[String]>,
    /// The chunk `process_next` reads into (its capacity is reused).
    scratch: Vec<u8>,
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn ns(seconds: f64, what: &str) -> PyResult<u64> {
    if !(0.0..1e9).contains(&seconds) {
        return Err(config_err(format!("bad {what} {seconds}: seconds from 0")));
    }
    Ok((seconds * 1e9).round() as u64)
}

impl SignalEngine {
    /// The fires of a chunk of complete envelope lines.
    fn run(&mut self, py: Python<'_>, lines: &[u8], mode: Mode) -> PyResult<Vec<FireTuple>> {
        if let Some(rule) = &mut self.rule {
            let engine = &mut self.engine;
            let fires = py.allow_threads(|| {
                let mut out = Vec::new();
                engine.process(lines, mode, rule, &mut out);
                out
            });
            return fires
                .into_iter()
                .map(|f| {
                    let payload = payload_dict(py, &f.payload)?.into_any().unbind();
                    fire_tuple(
                        py,
                        Fire {
                            msg_id: f.msg_id,
                            subject: f.subject,
                            venue: f.venue,
                            instrument: f.instrument,
                            ts: f.ts,
                            rx: f.rx,
                            source_seq: f.source_seq,
                            payload,
                        },
                    )
                })
                .collect();
        }
        let (Some(ev), Some(pl)) = (&self.evaluate, &self.payload) else {
            return Err(config_err("no evaluator".into()));
        };
        let mut e = PyEval {
            py,
            evaluate: ev.bind(py).clone(),
            payload: pl.bind(py).clone(),
            names: self.names.clone(),
            fatal: None,
        };
        let mut out = Vec::new();
        self.engine.process(lines, mode, &mut e, &mut out);
        if let Some(err) = e.fatal.take() {
            return Err(err);
        }
        out.into_iter().map(|f| fire_tuple(py, f)).collect()
    }
}

#[pymethods]
impl SignalEngine {
    /// `builders`: `(name, kind, window seconds, resolution seconds)`;
    /// `rule`: `(builder, field, op, value, abs)` clauses, all of which
    /// must hold (evaluated in Rust); otherwise `evaluate(state)` and
    /// `payload(state)` are called.
    #[new]
    #[pyo3(signature = (signal, builders, *, rule = None, evaluate = None, payload = None, trigger = "edge", venues = None, instruments = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        signal: String,
        builders: Vec<(String, String, f64, f64)>,
        rule: Option<Vec<RuleClause>>,
        evaluate: Option<Py<PyAny>>,
        payload: Option<Py<PyAny>>,
        trigger: &str,
        venues: Option<Vec<String>>,
        instruments: Option<Vec<String>>,
    ) -> PyResult<Self> {
        if signal.is_empty()
            || !signal
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(config_err(format!(
                "bad signal id {signal:?}: lower-case letters, digits, - and _"
            )));
        }
        if builders.is_empty() {
            return Err(config_err("a signal requires at least one builder".into()));
        }
        let mut specs: Vec<(String, Spec)> = Vec::new();
        for (name, kind, window, resolution) in builders {
            if specs.iter().any(|(n, _)| *n == name) {
                return Err(config_err(format!("builder {name:?} declared twice")));
            }
            let w = ns(window, "window")?;
            let r = ns(resolution, "resolution")?;
            let spec = Spec::parse(&kind, w, r).ok_or_else(|| {
                config_err(format!(
                    "unknown builder {kind:?} (known: volume_profile, price_profile, spread, lifecycle)"
                ))
            })?;
            if w == 0 && kind != "lifecycle" && kind != "spread" {
                return Err(config_err(format!(
                    "builder {name:?}: the window must be > 0"
                )));
            }
            specs.push((name, spec));
        }
        let trigger = match trigger {
            "edge" => Trigger::Edge,
            "record" => Trigger::Record,
            t => return Err(config_err(format!("bad trigger {t:?}: edge or record"))),
        };
        let venues = venues
            .map(|vs| {
                vs.iter()
                    .map(|v| {
                        Venue::parse(v).ok_or_else(|| config_err(format!("unknown venue {v:?}")))
                    })
                    .collect::<PyResult<Vec<Venue>>>()
            })
            .transpose()?;
        let instruments = instruments.map(|is| {
            is.into_iter()
                .flat_map(|i| [crate::subject::token(&i).into_bytes(), i.into_bytes()])
                .collect::<HashSet<Vec<u8>>>()
        });
        let rule = rule
            .map(|clauses| {
                clauses
                    .iter()
                    .map(|(b, f, op, v, abs)| {
                        Clause::new(&specs, b, f, op, v, *abs).map_err(|e| config_err(e.0))
                    })
                    .collect::<PyResult<Vec<Clause>>>()
                    .map(|clauses| Rule { clauses })
            })
            .transpose()?;
        if rule.is_none() && (evaluate.is_none() || payload.is_none()) {
            return Err(config_err(
                "a signal needs a rule, or evaluate and payload callables".into(),
            ));
        }
        let names: Arc<[String]> = specs.iter().map(|(n, _)| n.clone()).collect();
        Ok(SignalEngine {
            engine: Engine::new(Config {
                signal,
                builders: specs,
                trigger,
                venues,
                instruments,
            }),
            rule,
            evaluate,
            payload,
            names,
            scratch: Vec::new(),
        })
    }

    /// Process a chunk of complete envelope lines; returns the fires as
    /// `(msg_id, subject, venue, instrument, ts, rx, source_seq, payload)`.
    /// `evaluate=False` only updates the builders (a warm-up);
    /// `fire=False` evaluates and tracks edges without firing.
    #[pyo3(signature = (lines, *, evaluate = true, fire = true))]
    fn process(
        &mut self,
        py: Python<'_>,
        lines: &[u8],
        evaluate: bool,
        fire: bool,
    ) -> PyResult<Vec<FireTuple>> {
        self.run(py, lines, Mode { evaluate, fire })
    }

    /// Read the next chunk of `reader` and process it as :meth:`process`
    /// does, without handing the chunk to Python; `None` at the end.
    #[pyo3(signature = (reader, *, evaluate = true, fire = true))]
    fn process_next(
        &mut self,
        py: Python<'_>,
        reader: PyRef<'_, ArchiveReader>,
        evaluate: bool,
        fire: bool,
    ) -> PyResult<Option<Vec<FireTuple>>> {
        let mut buf = std::mem::take(&mut self.scratch);
        let got = match reader.fill(py, &mut buf) {
            Ok(0) => Ok(None),
            Ok(_) => self.run(py, &buf, Mode { evaluate, fire }).map(Some),
            Err(e) => Err(e),
        };
        self.scratch = buf;
        got
    }

    /// Whether the signal is evaluated in Rust (it has a rule).
    #[getter]
    fn native(&self) -> bool {
        self.rule.is_some()
    }

    /// Subject kinds the builders read.
    fn subject_kinds(&self) -> Vec<&'static str> {
        self.engine.subject_kinds()
    }

    /// Running totals (in a fixed order).
    fn counters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = self.engine.counters();
        let d = PyDict::new(py);
        for (k, v) in [
            ("lines", c.lines),
            ("bad_lines", c.bad_lines),
            ("lines_read", c.lines_read),
            ("snapshot_lines", c.snapshot_lines),
            ("records", c.records),
            ("filtered", c.filtered),
            ("not_usd", c.not_usd),
            ("unreadable", c.unreadable),
            ("evaluations", c.evaluations),
            ("fires", c.fires),
            ("errors", c.errors),
            ("gaps", c.gaps),
        ] {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    /// `(venue, instrument, records, fires, errors)` of every instrument seen.
    fn instruments(&self) -> Vec<(&'static str, String, u64, u64, u64)> {
        self.engine
            .instruments()
            .iter()
            .filter(|i| i.records > 0)
            .map(|i| {
                (
                    i.venue.as_str(),
                    i.name.to_string(),
                    i.records,
                    i.fires,
                    i.errors,
                )
            })
            .collect()
    }

    /// `(rx, venue, subject, detail)` of the gap status lines seen.
    fn gaps(&self) -> Vec<(u64, Option<&'static str>, String, String)> {
        self.engine
            .gaps()
            .iter()
            .map(|g| {
                (
                    g.rx,
                    g.venue.map(Venue::as_str),
                    g.subject.clone(),
                    g.detail.clone(),
                )
            })
            .collect()
    }

    /// Edge changes since the last call: `(venue, instrument, high)`.
    fn take_transitions(&mut self) -> Vec<(&'static str, String, bool)> {
        self.engine
            .take_transitions()
            .into_iter()
            .map(|(i, h)| (i.venue.as_str(), i.name.to_string(), h))
            .collect()
    }

    /// Evaluation errors since the last call: `(venue, instrument, message)`.
    fn take_errors(&mut self) -> Vec<(&'static str, String, String)> {
        self.engine
            .take_errors()
            .into_iter()
            .map(|(i, m)| (i.venue.as_str(), i.name.to_string(), m))
            .collect()
    }

    /// `(venue, instrument)` of the instruments whose evaluation is true.
    fn high(&self) -> Vec<(&'static str, String)> {
        self.engine
            .instruments()
            .iter()
            .filter(|i| i.high)
            .map(|i| (i.venue.as_str(), i.name.to_string()))
            .collect()
    }

    /// Restore an instrument's edge state.
    fn set_high(&mut self, venue: &str, instrument: &str, high: bool) -> PyResult<()> {
        let v =
            Venue::parse(venue).ok_or_else(|| config_err(format!("unknown venue {venue:?}")))?;
        self.engine.set_high(v, instrument, high);
        Ok(())
    }

    /// The largest receive time seen (ns).
    #[getter]
    fn last_rx(&self) -> Option<u64> {
        self.engine.last_rx()
    }

    /// Window entries held over every instrument.
    fn entries(&self) -> usize {
        self.engine.entries()
    }

    /// The declared builders' field names: `{name: [field, …]}`.
    fn fields<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (name, spec) in &self.engine.config().builders {
            d.set_item(name, PyList::new(py, spec.fields())?)?;
        }
        Ok(d)
    }
}
