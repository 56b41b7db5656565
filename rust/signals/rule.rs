//! Rules: conditions on builder fields that the engine evaluates without
//! leaving Rust (the built-in signals declare one), and the default
//! payload of a fire.
//!
//! A rule is a list of clauses, all of which must hold:
//! `{builder}.{field} {op} {value}`, optionally on the absolute value of
//! the field. Exact fields (dollar volume, contracts, prices) compare as
//! exact decimals; ratios compare as floats; text fields (`phase`,
//! `event`) compare with `==`, `!=` or `in` (a comma-separated list).
use super::builders::{Spec, Value};
use super::engine::{Ctx, Evaluator};
use super::fixed::{self, Fixed};

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Ge,
    Gt,
    Le,
    Lt,
    Eq,
    Ne,
    In,
}

impl Op {
    pub fn parse(s: &str) -> Option<Op> {
        Some(match s {
            ">=" => Op::Ge,
            ">" => Op::Gt,
            "<=" => Op::Le,
            "<" => Op::Lt,
            "==" => Op::Eq,
            "!=" => Op::Ne,
            "in" => Op::In,
            _ => return None,
        })
    }

    fn holds(self, o: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self {
            Op::Ge => o != Less,
            Op::Gt => o == Greater,
            Op::Le => o != Greater,
            Op::Lt => o == Less,
            Op::Eq => o == Equal,
            Op::Ne => o != Equal,
            Op::In => false,
        }
    }
}

/// One clause of a rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub builder: usize,
    pub field: &'static str,
    pub op: Op,
    /// Compare the field's absolute value.
    pub abs: bool,
    /// The value as an exact decimal (numbers).
    pub exact: Option<Fixed>,
    /// The value as a float (numbers), for float fields.
    pub float: f64,
    /// The words of a text comparison (`in`: several).
    pub words: Vec<String>,
}

/// Why a rule cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError(pub String);

impl Clause {
    /// `builder` is an index into `builders`; `value` is decimal text for
    /// numeric fields, a word (or comma-separated words for `in`) for text.
    pub fn new(
        builders: &[(String, Spec)],
        builder: &str,
        field: &str,
        op: &str,
        value: &str,
        abs: bool,
    ) -> Result<Clause, RuleError> {
        let (b, spec) = builders
            .iter()
            .enumerate()
            .find(|(_, (n, _))| n == builder)
            .map(|(i, (_, s))| (i, s))
            .ok_or_else(|| RuleError(format!("rule names no declared builder {builder:?}")))?;
        let field = *spec.fields().iter().find(|f| **f == field).ok_or_else(|| {
            RuleError(format!(
                "{} has no field {field:?} (fields: {})",
                spec.kind(),
                spec.fields().join(", ")
            ))
        })?;
        let op = Op::parse(op).ok_or_else(|| {
            RuleError(format!(
                "bad operator {op:?}: use >=, >, <=, <, ==, != or in"
            ))
        })?;
        let text_field = matches!(field, "phase" | "event");
        if text_field {
            if !matches!(op, Op::Eq | Op::Ne | Op::In) || abs {
                return Err(RuleError(format!(
                    "{field} is text: compare it with ==, != or in"
                )));
            }
            let words: Vec<String> = value
                .split(',')
                .map(|w| w.trim().to_owned())
                .filter(|w| !w.is_empty())
                .collect();
            return Ok(Clause {
                builder: b,
                field,
                op,
                abs,
                exact: None,
                float: 0.0,
                words,
            });
        }
        if op == Op::In {
            return Err(RuleError(format!("{field} is a number: `in` is for text")));
        }
        let exact = fixed::parse(value.trim().as_bytes())
            .ok_or_else(|| RuleError(format!("bad number {value:?} for {field}")))?;
        Ok(Clause {
            builder: b,
            field,
            op,
            abs,
            exact: Some(exact),
            float: fixed::to_f64(exact),
            words: Vec::new(),
        })
    }

    #[inline]
    fn holds(&self, ctx: &Ctx<'_>) -> bool {
        match ctx.states[self.builder].value(self.field) {
            Value::Dec(d) => {
                let d = if self.abs { d.abs() } else { d };
                self.exact.is_some_and(|x| self.op.holds(d.cmp(&x)))
            }
            Value::Int(i) => {
                let d = i128::from(if self.abs { i.abs() } else { i }) * fixed::ONE;
                self.exact.is_some_and(|x| self.op.holds(d.cmp(&x)))
            }
            Value::Float(f) => {
                let f = if self.abs { f.abs() } else { f };
                f.partial_cmp(&self.float).is_some_and(|o| self.op.holds(o))
            }
            Value::Str(s) => match self.op {
                Op::Eq | Op::In => self.words.contains(&s),
                Op::Ne => self.words.iter().all(|w| *w != s),
                _ => false,
            },
            Value::Null => false,
        }
    }
}

/// The fields of every builder's view: `(builder name, [(field, value)])`.
pub type Payload = Vec<(String, Vec<(&'static str, Value)>)>;

/// The default payload of a fire: every field of every builder.
pub fn payload_of(ctx: &Ctx<'_>) -> Payload {
    ctx.builders
        .iter()
        .zip(ctx.states)
        .map(|((name, spec), st)| (name.clone(), st.view(spec)))
        .collect()
}

/// A signal evaluated in Rust.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub clauses: Vec<Clause>,
}

impl Evaluator for Rule {
    type Payload = Payload;

    #[inline]
    fn evaluate(&mut self, ctx: &Ctx<'_>) -> Result<bool, String> {
        Ok(self.clauses.iter().all(|c| c.holds(ctx)))
    }

    fn payload(&mut self, ctx: &Ctx<'_>) -> Result<Payload, String> {
        Ok(payload_of(ctx))
    }
}
