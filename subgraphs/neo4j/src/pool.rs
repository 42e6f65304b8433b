//! A fixed set of threads for the blocking Neo4j driver, so a slow graph query never holds an
//! async worker: requests queue for the next free thread and await their answer.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

pub struct BlockingPool {
    jobs: mpsc::Sender<Job>,
}

impl BlockingPool {
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..threads.max(1) {
            let queue = queue.clone();
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
                            Ok(job) => job(),
                            Err(_) => return, // the pool was dropped
                        }
                    }
                })?;
        }
        Ok(Self { jobs })
    }

    /// Runs `work` on a pool thread and waits for it without blocking the runtime.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, &'static str> {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = sender.send(work());
            }))
            .map_err(|_| "the driver's threads have stopped")?;
        receiver.await.map_err(|_| "a driver thread failed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_off_the_runtime_and_comes_back() {
        let pool = BlockingPool::new(2).unwrap();
        let name = pool
            .run(|| std::thread::current().name().map(ToOwned::to_owned))
            .await
            .unwrap();
        assert!(name.unwrap().starts_with("neo4j-"));
        let sums = futures::future::join_all((0..8).map(|n| pool.run(move || n * 2))).await;
        assert_eq!(sums.into_iter().map(Result::unwrap).sum::<i32>(), 56);
    }
}
