//! The ranks of a data-parallel run and the collectives the trainer needs.
//!
//! Layer 1: no knowledge of data or models. [`Collective`] is what training uses: this rank,
//! the world size, an element-wise sum over all ranks (MPI_Allreduce), an equality check, and
//! a job-wide abort. [`SingleProcess`] is the world of one, where every collective is a no-op,
//! so the same training loop runs with or without MPI. With the cargo feature `mpi`,
//! `mpi_world` gives the MPI world when the process was started by `mpirun` (Open MPI, MPICH
//! or any PMI/PMIx launcher), and nothing otherwise, so the binary behaves exactly as without
//! the feature when it is run directly.

/// Collective operations over the ranks of one job.
pub trait Collective {
    /// This process's rank, 0..size.
    fn rank(&self) -> usize;
    /// Number of ranks.
    fn size(&self) -> usize;
    /// Replaces `values` on every rank by the element-wise sum over all ranks.
    fn sum_in_place(&self, values: &mut [f64]);
    /// True on every rank when every rank passed the same `value`.
    fn all_equal(&self, value: u64) -> bool;
    /// Ends the whole job with exit code `code` (every rank), after this rank failed.
    /// Returns only in a world of one.
    fn abort(&self, code: i32);
}

/// The world of one process: every collective is the identity.
#[derive(Debug, Clone, Copy, Default)]
pub struct SingleProcess;

impl Collective for SingleProcess {
    fn rank(&self) -> usize {
        0
    }

    fn size(&self) -> usize {
        1
    }

    fn sum_in_place(&self, _values: &mut [f64]) {}

    fn all_equal(&self, _value: u64) -> bool {
        true
    }

    fn abort(&self, _code: i32) {}
}

/// True when a process launcher (mpirun, mpiexec, srun with PMI) started this process.
pub fn launched_by_mpi() -> bool {
    [
        "OMPI_COMM_WORLD_SIZE",
        "PMI_SIZE",
        "PMIX_RANK",
        "MPI_LOCALNRANKS",
    ]
    .iter()
    .any(|name| std::env::var_os(name).is_some())
}

#[cfg(feature = "mpi")]
pub use self::with_mpi::{MpiWorld, mpi_world};

#[cfg(feature = "mpi")]
mod with_mpi {
    use mpi::collective::SystemOperation;
    use mpi::environment::Universe;
    use mpi::topology::SimpleCommunicator;
    use mpi::traits::*;

    use super::{Collective, launched_by_mpi};

    /// `MPI_COMM_WORLD`, initialised for the life of this value (finalised on drop).
    pub struct MpiWorld {
        world: SimpleCommunicator,
        _universe: Universe,
    }

    /// The MPI world when launched by mpirun (None otherwise, or when MPI cannot start).
    ///
    /// A panic anywhere then ends the whole job (MPI_Abort) after the usual message (except a
    /// decoder panic that [`crate::guard::catch`] turns into an error): unwinding
    /// would finalise MPI, which waits for ranks that may be blocked in an allreduce forever.
    pub fn mpi_world() -> Option<MpiWorld> {
        if !launched_by_mpi() {
            return None;
        }
        let universe = mpi::initialize()?;
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // A decoder panic caught at a unit boundary is an ordinary error (crate::guard).
            if crate::guard::is_guarded() {
                return;
            }
            report(info);
            // SAFETY: MPI was initialised above; MPI_Abort may be called from any thread.
            unsafe {
                mpi::ffi::MPI_Abort(mpi::ffi::RSMPI_COMM_WORLD, 101);
            }
        }));
        Some(MpiWorld {
            world: universe.world(),
            _universe: universe,
        })
    }

    impl Collective for MpiWorld {
        fn rank(&self) -> usize {
            usize::try_from(self.world.rank()).unwrap_or(0)
        }

        fn size(&self) -> usize {
            usize::try_from(self.world.size()).unwrap_or(1)
        }

        fn sum_in_place(&self, values: &mut [f64]) {
            let send = values.to_vec();
            self.world
                .all_reduce_into(&send[..], values, SystemOperation::sum());
        }

        fn all_equal(&self, value: u64) -> bool {
            let (mut low, mut high) = (0u64, 0u64);
            self.world
                .all_reduce_into(&value, &mut low, SystemOperation::min());
            self.world
                .all_reduce_into(&value, &mut high, SystemOperation::max());
            low == high
        }

        fn abort(&self, code: i32) {
            self.world.abort(code);
        }
    }
}
