//! Reads of a memory-mapped file that another process shrinks: a `SIGBUS` turned into a flag.
//!
//! Reading a mapped page that lies past the end of a file that shrank after it was mapped
//! raises `SIGBUS`, which ends the process. streamfit maps its data files (Parquet and shards)
//! for warm reads, so it installs, once, a `SIGBUS` handler that knows the address ranges of
//! its maps ([`FaultWatch::register`]). For a fault inside one of them the handler maps an
//! anonymous zero page over the faulting page (`MAP_FIXED`), raises that map's flag and
//! returns: the read goes on, seeing zeros, and the reader, which checks
//! [`FaultWatch::faulted`] before it hands any rows on and after each unit, fails the unit
//! with "changed while being read" instead (see [`MappedFile`](super::mapped_file)). A fault
//! anywhere else goes to the handler that was installed before (Rust's own, which reports a
//! stack overflow or restores the default action, so the process ends as it would have).
//!
//! The handler only reads atomics and calls `mmap`; the registry it searches is a list of
//! fixed segments of slots, appended to and never freed, so it needs no lock. Only Linux has
//! the handler; elsewhere a watch never fires and a shrunk file still ends the process.

#[cfg(target_os = "linux")]
pub(crate) use self::linux::FaultWatch;

#[cfg(not(target_os = "linux"))]
pub(crate) use self::other::FaultWatch;

#[cfg(target_os = "linux")]
mod linux {
    use std::ffi::c_void;
    use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering, fence};
    use std::sync::{Once, OnceLock};

    /// Slots per segment of the registry.
    const SLOTS: usize = 64;

    /// A slot's state, in the low two bits of its tag (the rest counts its reuses, so that
    /// the handler notices a slot that changed while it read it).
    const FREE: u64 = 0;
    const WRITING: u64 = 1;
    const LIVE: u64 = 2;

    /// One registered map.
    struct Slot {
        tag: AtomicU64,
        start: AtomicUsize,
        len: AtomicUsize,
        faulted: AtomicBool,
    }

    impl Slot {
        const fn new() -> Slot {
            Slot {
                tag: AtomicU64::new(FREE),
                start: AtomicUsize::new(0),
                len: AtomicUsize::new(0),
                faulted: AtomicBool::new(false),
            }
        }
    }

    struct Segment {
        slots: [Slot; SLOTS],
        next: AtomicPtr<Segment>,
    }

    impl Segment {
        const fn new() -> Segment {
            Segment {
                slots: [const { Slot::new() }; SLOTS],
                next: AtomicPtr::new(std::ptr::null_mut()),
            }
        }

        /// The segment after this one, if any.
        fn next(&self) -> Option<&'static Segment> {
            // SAFETY: `next` is null or a segment leaked by `register`, never freed.
            unsafe { self.next.load(Ordering::Acquire).as_ref() }
        }
    }

    static FIRST: Segment = Segment::new();
    static INSTALL: Once = Once::new();
    /// The page size, set before the handler is installed.
    static PAGE_BYTES: AtomicUsize = AtomicUsize::new(4096);
    /// The `SIGBUS` action before ours, set before ours is installed.
    static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

    /// A map registered with the `SIGBUS` handler, until dropped.
    pub(crate) struct FaultWatch {
        slot: Option<&'static Slot>,
    }

    impl FaultWatch {
        /// Watches the `len` bytes mapped at `start` (page-aligned, as a map's start is).
        /// The map must stay mapped while the watch lives.
        pub(crate) fn register(start: *const u8, len: usize) -> FaultWatch {
            if len == 0 {
                return FaultWatch { slot: None };
            }
            INSTALL.call_once(install);
            let mut segment: &'static Segment = &FIRST;
            loop {
                for slot in &segment.slots {
                    let tag = slot.tag.load(Ordering::Relaxed);
                    if tag & 3 != FREE {
                        continue;
                    }
                    let claimed = slot.tag.compare_exchange(
                        tag,
                        tag | WRITING,
                        Ordering::Acquire,
                        Ordering::Relaxed,
                    );
                    if claimed.is_err() {
                        continue;
                    }
                    slot.start.store(start as usize, Ordering::Relaxed);
                    slot.len.store(len, Ordering::Relaxed);
                    slot.faulted.store(false, Ordering::Relaxed);
                    slot.tag.store(tag | LIVE, Ordering::Release);
                    return FaultWatch { slot: Some(slot) };
                }
                segment = match segment.next() {
                    Some(next) => next,
                    None => {
                        let fresh: &'static Segment = Box::leak(Box::new(Segment::new()));
                        match segment.next.compare_exchange(
                            std::ptr::null_mut(),
                            (fresh as *const Segment).cast_mut(),
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        ) {
                            Ok(_) => fresh,
                            // Another thread appended one first: use it (ours stays unused).
                            Err(other) => {
                                // SAFETY: a non-null `next` is a leaked, never-freed segment.
                                unsafe { &*other }
                            }
                        }
                    }
                };
            }
        }

        /// True once a read of the watched map faulted (the file shrank under it).
        pub(crate) fn faulted(&self) -> bool {
            self.slot
                .is_some_and(|slot| slot.faulted.load(Ordering::SeqCst))
        }
    }

    impl Drop for FaultWatch {
        fn drop(&mut self) {
            if let Some(slot) = self.slot {
                let tag = slot.tag.load(Ordering::Relaxed);
                // The next use of the slot has a new tag.
                slot.tag.store((tag & !3) + 4, Ordering::Release);
            }
        }
    }

    /// Installs the handler, keeping the action it replaces.
    fn install() {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if page > 0 {
            PAGE_BYTES.store(page as usize, Ordering::Relaxed);
        }
        // SAFETY: sigaction with a null new action only reads the current one into `previous`,
        // a valid out-pointer; all-zero is a valid `sigaction` value.
        let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
        if unsafe { libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut previous) } != 0 {
            return;
        }
        let _ = PREVIOUS.set(previous);
        // SAFETY: as above; the handler has the SA_SIGINFO signature, and `sa_mask` is
        // initialised by sigemptyset.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigbus as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
        }
    }

    /// The live slot whose map holds `address`.
    fn find(address: usize) -> Option<&'static Slot> {
        let mut segment: Option<&'static Segment> = Some(&FIRST);
        while let Some(s) = segment {
            for slot in &s.slots {
                let before = slot.tag.load(Ordering::Acquire);
                if before & 3 != LIVE {
                    continue;
                }
                let start = slot.start.load(Ordering::Relaxed);
                let len = slot.len.load(Ordering::Relaxed);
                fence(Ordering::Acquire);
                if slot.tag.load(Ordering::Relaxed) == before && address.wrapping_sub(start) < len {
                    return Some(slot);
                }
            }
            segment = s.next();
        }
        None
    }

    /// The `SIGBUS` handler: async-signal-safe (atomics and `mmap` only).
    extern "C" fn on_sigbus(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
        // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
        let address = unsafe { (*info).si_addr() } as usize;
        if let Some(slot) = find(address) {
            let page = PAGE_BYTES.load(Ordering::Relaxed);
            slot.faulted.store(true, Ordering::SeqCst);
            // SAFETY: the page lies inside a live read-only map of ours (nothing else owns
            // it); replacing it with zeros changes only what those reads see.
            let zero = unsafe {
                libc::mmap(
                    (address & !(page - 1)) as *mut c_void,
                    page,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if zero != libc::MAP_FAILED {
                return;
            }
        }
        chain(signal, info, context);
    }

    /// Hands a fault that is not ours to the previous action: its handler, or (for the default
    /// action) the default restored, so that the faulting access, run again on return, ends
    /// the process as it would have without us.
    fn chain(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
        let handler = PREVIOUS.get().map(|p| (p.sa_sigaction, p.sa_flags));
        match handler {
            Some((handler, flags)) if handler != libc::SIG_DFL && handler != libc::SIG_IGN => {
                if flags & libc::SA_SIGINFO != 0 {
                    // SAFETY: an SA_SIGINFO action's handler has this signature.
                    let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut c_void) =
                        unsafe { std::mem::transmute(handler) };
                    f(signal, info, context);
                } else {
                    // SAFETY: a plain action's handler takes the signal number.
                    let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
                    f(signal);
                }
            }
            _ => {
                // SAFETY: all-zero with SIG_DFL is the default action; sigaction is
                // async-signal-safe.
                unsafe {
                    let mut default: libc::sigaction = std::mem::zeroed();
                    default.sa_sigaction = libc::SIG_DFL;
                    libc::sigaction(libc::SIGBUS, &default, std::ptr::null_mut());
                }
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod other {
    /// Without the handler a watch never fires.
    pub(crate) struct FaultWatch;

    impl FaultWatch {
        pub(crate) fn register(_start: *const u8, _len: usize) -> FaultWatch {
            FaultWatch
        }

        pub(crate) fn faulted(&self) -> bool {
            false
        }
    }
}
