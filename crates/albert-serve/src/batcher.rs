//! Dynamic batching by token budget, one queue per model.
//!
//! Requests put their tokenized texts (jobs) on the model's queue; worker threads take batches
//! off it and run them on the engine, never on the async executor. A batch starts from the oldest
//! waiting job and adds the jobs closest to it in length while the padded size (longest × count)
//! stays within `max_batch_tokens` and the count within `max_batch_requests`, so short texts are
//! not padded to long ones (TEI forms batches by the same token budget). A worker waits up to
//! `max_batch_delay` after the oldest job arrived for more to come, but only while the model has
//! more requests in progress than jobs waiting (others are being tokenized, or will follow their
//! running batch), and not when a full batch is already waiting: a lone request is not delayed
//! for company that is not coming, while under load the pause lets the queue fill (and, on a
//! machine whose cores the engine shares with the HTTP front end, gives the front end the CPU). A job whose request has gone (client disconnected, request timed out) is
//! dropped before it runs and counted in `albert_requests_dropped_total`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use albert_runtime::{ModelOutputs, Pipeline, RuntimeError};
use tokenizers::Encoding;
use tokio::sync::mpsc::UnboundedSender;

/// How batches are formed.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    /// Padded tokens per batch (longest × count).
    pub max_batch_tokens: usize,
    /// Texts per batch.
    pub max_batch_requests: usize,
    /// How long the oldest job may wait for others to join it.
    pub max_batch_delay: Duration,
}

/// One text of a request, tokenized.
pub struct Job {
    /// The text's tokens.
    pub encoding: Arc<Encoding>,
    /// The text's position within its request.
    pub index: usize,
    /// Where the result goes; closed when the request is gone.
    pub reply: UnboundedSender<RowDone>,
    enqueued: Instant,
}

impl Job {
    /// A job for text `index` of a request.
    pub fn new(encoding: Arc<Encoding>, index: usize, reply: UnboundedSender<RowDone>) -> Self {
        Job {
            encoding,
            index,
            reply,
            enqueued: Instant::now(),
        }
    }
}

/// The result of one job: its batch's outputs and its row in them.
pub struct RowDone {
    /// The text's position within its request.
    pub index: usize,
    /// The batch's outputs and this text's row, or the engine's error (shared by the batch).
    pub result: Result<(Arc<ModelOutputs>, usize), Arc<RuntimeError>>,
    /// Time from queueing to the start of its batch.
    pub queue_time: Duration,
    /// The batch's run time.
    pub inference_time: Duration,
}

struct Queue {
    jobs: VecDeque<Job>,
    closed: bool,
}

struct Shared {
    model: String,
    pipeline: Arc<Pipeline>,
    limits: BatchLimits,
    queue: Mutex<Queue>,
    ready: Condvar,
    /// Requests for this model in progress (accepted, not yet answered).
    pending: AtomicUsize,
}

/// A model's queue and its worker threads.
pub struct Batcher {
    shared: Arc<Shared>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl Batcher {
    /// Starts `workers` threads (at least one) running batches of `pipeline`.
    pub fn start(
        model: &str,
        pipeline: Arc<Pipeline>,
        limits: BatchLimits,
        workers: usize,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            model: model.to_string(),
            pipeline,
            limits,
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                closed: false,
            }),
            ready: Condvar::new(),
            pending: AtomicUsize::new(0),
        });
        let handles = (0..workers.max(1))
            .map(|i| {
                let shared = shared.clone();
                std::thread::Builder::new()
                    .name(format!("batch-{model}-{i}"))
                    .spawn(move || work(&shared))
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Batcher {
            shared,
            workers: Mutex::new(handles),
        })
    }

    /// Counts a request as in progress until the guard drops: workers wait for company only
    /// while more requests are in progress than jobs wait.
    pub fn pending(&self) -> Pending {
        self.shared.pending.fetch_add(1, Ordering::SeqCst);
        Pending(self.shared.clone())
    }

    /// Queues a request's jobs; `false` when the batcher is closed (shutting down).
    pub fn submit(&self, jobs: Vec<Job>) -> bool {
        let mut queue = lock(&self.shared.queue);
        if queue.closed {
            return false;
        }
        queue.jobs.extend(jobs);
        metrics::gauge!("albert_queue_size", "model" => self.shared.model.clone())
            .set(queue.jobs.len() as f64);
        drop(queue);
        self.shared.ready.notify_all();
        true
    }

    /// Jobs waiting.
    pub fn queued(&self) -> usize {
        lock(&self.shared.queue).jobs.len()
    }

    /// Stops taking jobs, lets the workers finish what is queued, and waits for them.
    pub fn close(&self) {
        lock(&self.shared.queue).closed = true;
        self.shared.ready.notify_all();
        let handles: Vec<JoinHandle<()>> = std::mem::take(&mut *lock(&self.workers));
        for handle in handles {
            // A worker that panicked has already lost its batch; nothing more to do with it.
            let _ = handle.join();
        }
    }
}

/// A request in progress (see [`Batcher::pending`]).
pub struct Pending(Arc<Shared>);

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.pending.fetch_sub(1, Ordering::SeqCst);
        self.0.ready.notify_all();
    }
}

/// Locks, recovering from a poisoned lock: the queue holds no invariant a panic could break.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn work(shared: &Shared) {
    while let Some(batch) = next_batch(shared) {
        run(shared, batch);
    }
}

/// Waits for jobs and takes the next batch; `None` once closed and empty.
fn next_batch(shared: &Shared) -> Option<Vec<Job>> {
    let limits = shared.limits;
    let mut queue = lock(&shared.queue);
    loop {
        drop_abandoned(&mut queue.jobs, &shared.model);
        let Some(oldest) = queue.jobs.front() else {
            if queue.closed {
                return None;
            }
            queue = shared
                .ready
                .wait(queue)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            continue;
        };
        let deadline = oldest.enqueued + limits.max_batch_delay;
        let now = Instant::now();
        let nobody_coming = shared.pending.load(Ordering::SeqCst) <= queue.jobs.len();
        if queue.closed || nobody_coming || now >= deadline || is_full(&queue.jobs, &limits) {
            let batch = take_batch(&mut queue.jobs, &limits);
            metrics::gauge!("albert_queue_size", "model" => shared.model.clone())
                .set(queue.jobs.len() as f64);
            return Some(batch);
        }
        queue = shared
            .ready
            .wait_timeout(queue, deadline - now)
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0;
    }
}

fn drop_abandoned(jobs: &mut VecDeque<Job>, model: &str) {
    let before = jobs.len();
    jobs.retain(|job| !job.reply.is_closed());
    let dropped = before - jobs.len();
    if dropped > 0 {
        metrics::counter!("albert_requests_dropped_total", "model" => model.to_string())
            .increment(dropped as u64);
    }
}

/// Whether the waiting jobs already fill a batch (by count, or by their unpadded tokens).
fn is_full(jobs: &VecDeque<Job>, limits: &BatchLimits) -> bool {
    jobs.len() >= limits.max_batch_requests
        || jobs.iter().map(|j| j.encoding.len()).sum::<usize>() >= limits.max_batch_tokens
}

/// Takes the oldest job and those nearest to it in length that fit the budget.
fn take_batch(jobs: &mut VecDeque<Job>, limits: &BatchLimits) -> Vec<Job> {
    let Some(oldest) = jobs.pop_front() else {
        return Vec::new();
    };
    let anchor = oldest.encoding.len();
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    // Nearest in length first; among equals, the oldest first.
    order.sort_by_key(|&i| (jobs[i].encoding.len().abs_diff(anchor), i));
    let mut chosen = Vec::new();
    let mut longest = anchor;
    let mut real = anchor;
    for i in order {
        if chosen.len() + 1 >= limits.max_batch_requests {
            break;
        }
        let length = jobs[i].encoding.len();
        let padded = longest.max(length) * (chosen.len() + 2);
        // Padding is work thrown away: a text that would make more than a third of the batch
        // padding waits for a batch of its own length (measured: docs/serving.md, "Benchmark").
        if padded > limits.max_batch_tokens || 2 * padded > 3 * (real + length) {
            continue;
        }
        longest = longest.max(length);
        real += length;
        chosen.push(i);
    }
    chosen.sort_unstable_by(|a, b| b.cmp(a));
    let mut batch = vec![oldest];
    batch.extend(chosen.into_iter().filter_map(|i| jobs.remove(i)));
    batch
}

fn run(shared: &Shared, batch: Vec<Job>) {
    let started = Instant::now();
    let encodings: Vec<&Encoding> = batch.iter().map(|j| j.encoding.as_ref()).collect();
    let longest = encodings.iter().map(|e| e.len()).max().unwrap_or(0);
    let model = shared.model.clone();
    metrics::histogram!("albert_batch_size", "model" => model.clone()).record(batch.len() as f64);
    metrics::histogram!("albert_batch_tokens", "model" => model.clone())
        .record((longest * batch.len()) as f64);
    let result = shared.pipeline.run_encodings(&encodings);
    let inference_time = started.elapsed();
    metrics::histogram!("albert_inference_duration_seconds", "model" => model)
        .record(inference_time.as_secs_f64());
    let result = result.map(Arc::new).map_err(Arc::new);
    for (row, job) in batch.into_iter().enumerate() {
        let done = RowDone {
            index: job.index,
            result: match &result {
                Ok(outputs) => Ok((outputs.clone(), row)),
                Err(e) => Err(e.clone()),
            },
            queue_time: started.saturating_duration_since(job.enqueued),
            inference_time,
        };
        // The request may have gone meanwhile; its result is simply not wanted.
        let _ = job.reply.send(done);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn job(len: usize, reply: &UnboundedSender<RowDone>, index: usize) -> Job {
        let ids = vec![5u32; len];
        let encoding = Encoding::new(
            ids.clone(),
            vec![0; len],
            vec![String::new(); len],
            vec![None; len],
            vec![(0, 0); len],
            vec![0; len],
            vec![1; len],
            Vec::new(),
            Default::default(),
        );
        Job::new(Arc::new(encoding), index, reply.clone())
    }

    fn lengths(batch: &[Job]) -> Vec<usize> {
        batch.iter().map(|j| j.encoding.len()).collect()
    }

    #[test]
    fn a_batch_keeps_to_the_token_budget_and_groups_similar_lengths() {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let limits = BatchLimits {
            max_batch_tokens: 100,
            max_batch_requests: 8,
            max_batch_delay: Duration::ZERO,
        };
        let mut jobs: VecDeque<Job> = [10, 50, 12, 48, 11, 9, 50]
            .iter()
            .enumerate()
            .map(|(i, &n)| job(n, &tx, i))
            .collect();
        // The oldest (10) with the nearest lengths, padded to 12: 12 × 5 = 60 ≤ 100, and
        // adding a 48 would make 48 × 6 = 288.
        let first = take_batch(&mut jobs, &limits);
        assert_eq!(lengths(&first), vec![10, 9, 11, 12]);
        // Then the 50 with the 50 (100 ≤ 100); the 48 would make 150.
        let second = take_batch(&mut jobs, &limits);
        assert_eq!(lengths(&second), vec![50, 50]);
        let third = take_batch(&mut jobs, &limits);
        assert_eq!(lengths(&third), vec![48]);
        assert!(jobs.is_empty());
    }

    #[test]
    fn a_batch_keeps_to_the_request_limit_and_a_long_text_runs_alone() {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let limits = BatchLimits {
            max_batch_tokens: 64,
            max_batch_requests: 2,
            max_batch_delay: Duration::ZERO,
        };
        let mut jobs: VecDeque<Job> = [100, 4, 4, 4]
            .iter()
            .enumerate()
            .map(|(i, &n)| job(n, &tx, i))
            .collect();
        assert_eq!(lengths(&take_batch(&mut jobs, &limits)), vec![100]);
        assert_eq!(lengths(&take_batch(&mut jobs, &limits)), vec![4, 4]);
        assert_eq!(lengths(&take_batch(&mut jobs, &limits)), vec![4]);
    }

    #[test]
    fn a_text_that_would_make_a_third_of_the_batch_padding_waits() {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let limits = BatchLimits {
            max_batch_tokens: 10_000,
            max_batch_requests: 32,
            max_batch_delay: Duration::ZERO,
        };
        let mut jobs: VecDeque<Job> = [10, 40, 11, 30]
            .iter()
            .enumerate()
            .map(|(i, &n)| job(n, &tx, i))
            .collect();
        // 10 and 11: 22 padded for 21 real. Adding the 30 would pad 90 for 51.
        assert_eq!(lengths(&take_batch(&mut jobs, &limits)), vec![10, 11]);
        // 40 and 30: 80 padded for 70 real.
        assert_eq!(lengths(&take_batch(&mut jobs, &limits)), vec![40, 30]);
    }

    #[test]
    fn jobs_of_requests_that_are_gone_are_dropped() {
        let (kept, _rx) = tokio::sync::mpsc::unbounded_channel();
        let (gone, rx) = tokio::sync::mpsc::unbounded_channel();
        drop(rx);
        let mut jobs: VecDeque<Job> = vec![job(3, &gone, 0), job(3, &kept, 0), job(3, &gone, 1)]
            .into_iter()
            .collect();
        drop_abandoned(&mut jobs, "m");
        assert_eq!(jobs.len(), 1);
        assert!(!jobs[0].reply.is_closed());
    }
}
