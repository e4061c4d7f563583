//! A writer thread, so that a chatty container's next batch is read and encoded while the
//! previous one is written: the shim's two costs (reading the pipe and encoding, the
//! write(2) into the page cache) then run on two CPUs instead of one after the other.
//!
//! The sink travels with the batch: the main thread hands `(sink, batch)` over and gets
//! `(sink, batch, result)` back, so there is no lock and nothing touches the sink while a
//! write runs. One batch at most is in flight. The thread is started by the first large batch
//! only: a quiet container's shim never has one (its memory stays that of one thread).

use std::io;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread;

/// What comes back from the writer thread: the sink, the batch (to reuse its allocation,
/// or to salvage it after a failure) and how the write went.
pub type Written<S, B> = (S, B, io::Result<()>);

/// The writer thread's two ends.
#[derive(Debug)]
pub struct Pipeline<S, B> {
    /// Sends a sink and the batch to write into it.
    to_writer: SyncSender<(S, B)>,
    /// Receives them back once written.
    from_writer: Receiver<Written<S, B>>,
}

/// The writer thread's stack: it only calls write(2).
const STACK: usize = 64 * 1024;

impl<S, B> Pipeline<S, B>
where
    S: Send + 'static,
    B: AsRef<[u8]> + Send + 'static,
{
    /// Starts the writer thread; `write` appends one batch to the sink.
    pub fn start(write: fn(&mut S, &[u8]) -> io::Result<()>) -> io::Result<Pipeline<S, B>> {
        let (to_writer, batches) = mpsc::sync_channel::<(S, B)>(1);
        let (done, from_writer) = mpsc::sync_channel(1);
        thread::Builder::new()
            .name("log-writer".into())
            .stack_size(STACK)
            .spawn(move || {
                // Ends when the shim drops its end (the log is closed).
                for (mut sink, batch) in batches {
                    let result = write(&mut sink, batch.as_ref());
                    if done.send((sink, batch, result)).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Pipeline {
            to_writer,
            from_writer,
        })
    }

    /// Hands `batch` to the thread to be written into `sink`; on failure (the thread is
    /// gone) gives both back.
    pub fn send(&self, sink: S, batch: B) -> Result<(), (S, B)> {
        self.to_writer.send((sink, batch)).map_err(|e| e.0)
    }

    /// Waits for the batch in flight; None if the thread is gone (it took the sink with it,
    /// which cannot happen while [`Pipeline::send`] is answered).
    pub fn wait(&self) -> Option<Written<S, B>> {
        self.from_writer.recv().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_come_back_written_in_order() {
        let pipeline: Pipeline<Vec<u8>, Vec<u8>> = Pipeline::start(|sink: &mut Vec<u8>, b| {
            if b == b"fail" {
                return Err(io::ErrorKind::StorageFull.into());
            }
            sink.extend_from_slice(b);
            Ok(())
        })
        .expect("start");
        let mut sink = Vec::new();
        for batch in [&b"one "[..], b"fail", b"two"] {
            pipeline
                .send(sink, batch.to_vec())
                .map_err(|_| "send")
                .expect("send");
            let (back, returned, result) = pipeline.wait().expect("written");
            assert_eq!(returned, batch);
            assert_eq!(result.is_err(), batch == b"fail");
            sink = back;
        }
        assert_eq!(sink, b"one two");
    }
}
