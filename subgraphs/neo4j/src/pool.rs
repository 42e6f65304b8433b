//! A fixed set of threads for the blocking Neo4j driver, so a slow graph query never holds an
//! async worker: requests queue for the next free thread and await their answer. The queue is
//! bounded (a request beyond it is refused as busy), and work whose caller has gone away by
//! the time a thread takes it is skipped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

pub struct BlockingPool {
    jobs: mpsc::SyncSender<Job>,
    threads: usize,
    /// Threads running a job now.
    busy: Arc<AtomicUsize>,
}

/// Counts a thread free again when dropped.
struct Free<'a>(&'a AtomicUsize);

impl Drop for Free<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Why work did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("every driver thread is busy and the queue is full")]
    Busy,
    #[error("the driver's threads have stopped")]
    Stopped,
}

impl BlockingPool {
    /// `threads` threads, and at most `queue` jobs waiting for them.
    pub fn new(threads: usize, queue: usize) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::sync_channel::<Job>(queue);
        let queue = Arc::new(Mutex::new(queue));
        let busy = Arc::new(AtomicUsize::new(0));
        let threads = threads.max(1);
        for index in 0..threads {
            let (queue, running) = (queue.clone(), busy.clone());
            std::thread::Builder::new()
                .name(format!("neo4j-{index}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while taking a job, not while running it.
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => {
                                running.fetch_add(1, Ordering::Relaxed);
                                // Counted free again however the job ends, a panic included.
                                let _free = Free(&running);
                                job();
                            }
                            Err(_) => return, // the pool was dropped
                        }
                    }
                })?;
        }
        Ok(Self {
            jobs,
            threads,
            busy,
        })
    }

    /// How many threads there are, and a count of those running a job now (each holds at most
    /// one of the driver's connections while it does).
    pub fn usage(&self) -> (usize, Arc<AtomicUsize>) {
        (self.threads, self.busy.clone())
    }

    /// Runs `work` on a pool thread and waits for it without blocking the runtime. Dropping
    /// the returned future before a thread takes the work cancels it.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        self.jobs
            .try_send(Box::new(move || {
                if sender.is_closed() {
                    return;
                }
                let _ = sender.send(work());
            }))
            .map_err(|error| match error {
                mpsc::TrySendError::Full(_) => PoolError::Busy,
                mpsc::TrySendError::Disconnected(_) => PoolError::Stopped,
            })?;
        receiver.await.map_err(|_| PoolError::Stopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_off_the_runtime_and_comes_back() {
        let pool = BlockingPool::new(2, 16).unwrap();
        let name = pool
            .run(|| std::thread::current().name().map(ToOwned::to_owned))
            .await
            .unwrap();
        assert!(name.unwrap().starts_with("neo4j-"));
        let sums = futures::future::join_all((0..8).map(|n| pool.run(move || n * 2))).await;
        assert_eq!(sums.into_iter().map(Result::unwrap).sum::<i32>(), 56);
    }

    #[tokio::test]
    async fn usage_counts_the_threads_running_work() {
        let pool = BlockingPool::new(2, 4).unwrap();
        let (threads, busy) = pool.usage();
        assert_eq!((threads, busy.load(Ordering::SeqCst)), (2, 0));
        let (started, wait) = (
            Arc::new(std::sync::Barrier::new(2)),
            std::sync::mpsc::channel::<()>(),
        );
        let (release, hold) = (wait.0, Arc::new(Mutex::new(wait.1)));
        let running = {
            let (started, hold) = (started.clone(), hold.clone());
            pool.run(move || {
                started.wait();
                let _ = hold.lock().unwrap().recv();
            })
        };
        let waiting = tokio::task::spawn_blocking(move || started.wait());
        let (ran, ()) = tokio::join!(running, async {
            waiting.await.unwrap();
            assert_eq!(busy.load(Ordering::SeqCst), 1);
            release.send(()).unwrap();
        });
        ran.unwrap();
        // The thread counts itself free just after its answer is sent.
        let free = pool.usage().1;
        for _ in 0..1000 {
            if free.load(Ordering::SeqCst) == 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(free.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_full_queue_refuses_and_abandoned_work_is_skipped() {
        let pool = BlockingPool::new(1, 1).unwrap();
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let (started, has_started) = std::sync::mpsc::channel::<()>();
        // The one thread is held; one job may wait; the next is refused.
        let running = pool.run(move || {
            let _ = started.send(());
            hold.recv().is_ok()
        });
        let mut running = Box::pin(running);
        assert!(futures::poll!(&mut running).is_pending());
        has_started.recv().unwrap();
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ran.clone();
        let waiting = pool.run(move || flag.store(true, std::sync::atomic::Ordering::SeqCst));
        let mut waiting = Box::pin(waiting);
        assert!(futures::poll!(&mut waiting).is_pending());
        assert_eq!(pool.run(|| ()).await, Err(PoolError::Busy));
        // The waiting job's caller goes away: when the thread is free, it does not run it.
        drop(waiting);
        release.send(()).unwrap();
        assert_eq!(running.await, Ok(true));
        // The thread answers the first job before it takes (and skips) the abandoned one, so
        // the queue frees a moment later.
        let mut answer = pool.run(|| 7).await;
        for _ in 0..200 {
            if answer != Err(PoolError::Busy) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            answer = pool.run(|| 7).await;
        }
        assert_eq!(answer, Ok(7));
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
    }
}
