//! The fault injector's per-datagram cost with every fault off: the calls
//! the UDP receive path makes for each datagram (`pop_due`, `next_due`,
//! `is_off`), alone and while a second thread makes the send path's call
//! (`is_off`) in a loop, as a sender thread does under load.
//! Run with `cargo bench --bench faults`.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use nsh::transport::Faults;

/// What the receive path asks for one datagram with faults off.
fn receive_path(f: &Faults, now: Instant) -> bool {
    black_box(f.pop_due(now)).is_none() && black_box(f.next_due()).is_none() && f.is_off()
}

fn benches(c: &mut Criterion) {
    let faults = Arc::new(Faults::default());
    let now = Instant::now();
    let mut g = c.benchmark_group("faults_off");
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("receive_path_alone", |b| {
        b.iter(|| receive_path(&faults, now))
    });
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (faults, stop) = (faults.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                black_box(faults.is_off());
            }
        })
    };
    g.bench_function("receive_path_with_a_sending_thread", |b| {
        b.iter(|| receive_path(&faults, now))
    });
    stop.store(true, Ordering::Relaxed);
    let _ = sender.join();
    g.finish();
}

criterion_group!(faults, benches);
criterion_main!(faults);
