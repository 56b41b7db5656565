//! pyo3 bindings: the `ssmd._core` extension module.
use pyo3::prelude::*;

mod archive;
mod archive_scan;
mod columns;
mod errors;
mod processor;
mod signals;

#[pymodule]
#[pyo3(name = "_core")]
fn core_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", crate::VERSION)?;
    processor::register(m)?;
    archive::register(m)?;
    archive_scan::register(m)?;
    columns::register(m)?;
    signals::register(m)?;
    m.add_function(wrap_pyfunction!(errors::error_classes, m)?)?;
    Ok(())
}
