//! How the hand-written CPU kernels spread their work: over rayon's pool with the `parallel`
//! feature (native, or wasm threads), in order on the calling thread without it (the page's
//! default one-thread engine).
//!
//! Tests run the one-thread branch too, in the same build (`tests::serially`): testing it in a
//! build without `parallel` would compile the whole burn stack a second time with other features
//! (about ten minutes of a cold CI run on two cores).

/// Calls `f(index, chunk, scratch)` for every `len`-long chunk of `values`; each worker reuses
/// one scratch buffer.
pub(crate) fn for_each_chunk_mut(
    values: &mut [f32],
    len: usize,
    f: impl Fn(usize, &mut [f32], &mut Vec<f32>) + Sync + Send,
) {
    if len == 0 {
        return;
    }
    #[cfg(feature = "parallel")]
    if !serial_forced() {
        use rayon::prelude::*;
        values.par_chunks_mut(len).enumerate().for_each_init(Vec::new, |scratch, (i, chunk)| f(i, chunk, scratch));
        return;
    }
    ran_serially();
    let mut scratch = Vec::new();
    for (i, chunk) in values.chunks_mut(len).enumerate() {
        f(i, chunk, &mut scratch);
    }
}

/// Calls `f(chunk, other_chunk)` on matching `len`-long chunks of `values` and `other`.
pub(crate) fn zip_chunks_mut(
    values: &mut [f32],
    other: &[f32],
    len: usize,
    f: impl Fn(&mut [f32], &[f32]) + Sync + Send,
) {
    assert_eq!(values.len(), other.len());
    #[cfg(feature = "parallel")]
    if !serial_forced() {
        use rayon::prelude::*;
        values.par_chunks_mut(len).zip(other.par_chunks(len)).for_each(|(v, o)| f(v, o));
        return;
    }
    ran_serially();
    values.chunks_mut(len).zip(other.chunks(len)).for_each(|(v, o)| f(v, o));
}

/// `(0..n).map(f)`, where `f` gets a scratch buffer that each worker reuses.
pub(crate) fn map_with_scratch<T: Send>(n: usize, f: impl Fn(usize, &mut Vec<f32>) -> T + Sync + Send) -> Vec<T> {
    #[cfg(feature = "parallel")]
    if !serial_forced() {
        use rayon::prelude::*;
        return (0..n).into_par_iter().map_init(Vec::new, |scratch, i| f(i, scratch)).collect();
    }
    ran_serially();
    let mut scratch = Vec::new();
    (0..n).map(|i| f(i, &mut scratch)).collect()
}

#[cfg(all(feature = "parallel", not(test)))]
fn serial_forced() -> bool {
    false
}

#[cfg(all(feature = "parallel", test))]
fn serial_forced() -> bool {
    tests::SERIAL.with(std::cell::Cell::get)
}

#[cfg(not(test))]
fn ran_serially() {}

#[cfg(test)]
fn ran_serially() {
    tests::SERIAL_RUNS.with(|runs| runs.set(runs.get() + 1));
}

#[cfg(test)]
pub(crate) mod tests {
    use std::cell::Cell;

    thread_local! {
        pub(super) static SERIAL: Cell<bool> = const { Cell::new(false) };
        pub(super) static SERIAL_RUNS: Cell<usize> = const { Cell::new(0) };
    }

    /// Runs `f` with every kernel it calls on this thread taking the one-thread branch, and
    /// checks that some did (a test that meant to cover that branch and missed it fails).
    pub(crate) fn serially<R>(f: impl FnOnce() -> R) -> R {
        struct Reset;
        impl Drop for Reset {
            fn drop(&mut self) {
                SERIAL.with(|s| s.set(false));
            }
        }
        let before = SERIAL_RUNS.with(Cell::get);
        SERIAL.with(|s| s.set(true));
        let _reset = Reset;
        let out = f();
        assert!(SERIAL_RUNS.with(Cell::get) > before, "no kernel took the one-thread branch");
        out
    }

    #[test]
    fn both_branches_visit_every_chunk_once() {
        let run = || {
            let mut values: Vec<f32> = (0..10).map(|v| v as f32).collect();
            for_each_chunk_mut_sum(&mut values);
            let other = vec![1.0; 10];
            super::zip_chunks_mut(&mut values, &other, 4, |v, o| v.iter_mut().zip(o).for_each(|(v, o)| *v += o));
            let sums = super::map_with_scratch(5, |i, scratch| {
                scratch.push(i as f32);
                i * 2
            });
            (values, sums)
        };
        let parallel = run();
        let serial = serially(run);
        assert_eq!(parallel, serial);
        assert_eq!(serial.1, vec![0, 2, 4, 6, 8]);
        assert_eq!(serial.0[9], 9.0 + 3.0 + 1.0, "chunk 3 of 3 values, then the other's 1");
    }

    /// Adds each chunk's index to its values (chunks of 3: the last one is short).
    fn for_each_chunk_mut_sum(values: &mut [f32]) {
        super::for_each_chunk_mut(values, 3, |i, chunk, _| chunk.iter_mut().for_each(|v| *v += i as f32));
    }
}
