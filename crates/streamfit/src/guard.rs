//! Panics of third-party decoders, caught at the boundary of a file's opening or a unit's read.
//!
//! The `parquet` crate panics on some malformed inputs instead of returning an error (a
//! negative column-chunk length in the footer, a dictionary page missing where the data
//! needs one, a broken bit-packed run). streamfit validates what it can before decoding; what
//! it cannot, [`catch`] turns into an ordinary error: when a file is opened (a corrupt file,
//! which `OnBadFile::Skip` may leave out) or a unit is read (a reader thread reports it like any
//! corrupt data, and the run fails).
//!
//! While a guarded call runs on a thread, [`is_guarded`] is true there: the panic hook this
//! module installs (once, on first use) stays silent for such panics, and a hook that aborts
//! the process (the MPI build's) must check it, or a caught decoder panic would end the job.
//! Panics anywhere else are reported and handled as before.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

thread_local! {
    static GUARDED: Cell<u32> = const { Cell::new(0) };
}

static HOOK: Once = Once::new();

/// True while a [`catch`] call is running on this thread.
pub fn is_guarded() -> bool {
    GUARDED.with(|g| g.get() > 0)
}

/// Runs `f`; if it panics, returns `Err(reason)` with the panic's message instead of unwinding
/// further. The caller turns the reason into an error naming its file and unit.
///
/// `f` must leave no shared state half-updated when it panics (decoding into buffers owned by
/// the call is fine: they are dropped).
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !is_guarded() {
                previous(info);
            }
        }));
    });
    GUARDED.with(|g| g.set(g.get() + 1));
    let result = catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(g.get() - 1));
    result.map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".to_string());
        format!("the decoder failed ({message})")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_with_its_message_and_the_guard_is_released() {
        let caught = catch(|| -> u32 { panic!("column start and length should not be negative") });
        assert_eq!(
            caught.unwrap_err(),
            "the decoder failed (column start and length should not be negative)"
        );
        assert!(!is_guarded());
        assert_eq!(catch(|| 7), Ok(7));
        assert!(!is_guarded());
    }

    #[test]
    fn nested_guards_stay_guarded_until_the_outer_one_ends() {
        let inner_was_guarded = catch(|| {
            let _ = catch(|| panic!("inner"));
            is_guarded()
        });
        assert_eq!(inner_was_guarded, Ok(true));
        assert!(!is_guarded());
    }
}
