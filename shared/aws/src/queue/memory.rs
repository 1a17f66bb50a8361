//! An in-memory `TaskQueue` that keeps what it was asked to do, for unit tests of the
//! handlers: the messages sent per queue and the delays given to received ones.

use std::sync::Mutex;
use std::time::Duration;

use super::{MessageGroup, Outbox, QueueDepth, TaskQueue};
use domain::Error;
use domain::TaskMessage;

#[derive(Default)]
pub struct MemoryQueue {
    sent: Mutex<Vec<(String, TaskMessage)>>,
    delays: Mutex<Vec<(String, Duration)>>,
    deferred: Mutex<Vec<(String, TaskMessage, Duration)>>,
    posted: Mutex<Vec<(String, serde_json::Value)>>,
    posted_later: Mutex<Vec<(String, serde_json::Value, Duration)>>,
}

impl MemoryQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every message sent so far, with its queue URL, in order.
    pub fn sent(&self) -> Vec<(String, TaskMessage)> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Takes the messages sent so far, leaving none.
    pub fn take_sent(&self) -> Vec<(String, TaskMessage)> {
        std::mem::take(&mut *self.sent.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Every `defer` so far: the queue URL, the message and its delay.
    pub fn deferred(&self) -> Vec<(String, TaskMessage, Duration)> {
        self.deferred.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Every message `post`ed so far, with its queue URL, as JSON.
    pub fn posted(&self) -> Vec<(String, serde_json::Value)> {
        self.posted.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Every message `post_later`ed so far: the queue URL, the message as JSON and its delay.
    pub fn posted_later(&self) -> Vec<(String, serde_json::Value, Duration)> {
        self.posted_later.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Every `retry_later` so far: the queue URL and the delay.
    pub fn delays(&self) -> Vec<(String, Duration)> {
        self.delays.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl TaskQueue for MemoryQueue {
    async fn depth(&self, _: &str) -> Result<QueueDepth, Error> {
        let visible = self.sent.lock().unwrap_or_else(|p| p.into_inner()).len() as u64;
        Ok(QueueDepth { visible, ..QueueDepth::default() })
    }

    async fn send(&self, queue_url: &str, messages: &[TaskMessage]) -> Result<(), Error> {
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        sent.extend(messages.iter().map(|m| (queue_url.to_owned(), m.clone())));
        Ok(())
    }

    async fn defer(&self, queue_url: &str, message: &TaskMessage, delay: Duration) -> Result<(), Error> {
        self.deferred.lock().unwrap_or_else(|p| p.into_inner()).push((queue_url.to_owned(), message.clone(), delay));
        Ok(())
    }

    async fn retry_later(&self, queue_url: &str, _: &str, delay: Duration) -> Result<(), Error> {
        self.delays.lock().unwrap_or_else(|p| p.into_inner()).push((queue_url.to_owned(), delay));
        Ok(())
    }
}

impl Outbox for MemoryQueue {
    async fn post<M: serde::Serialize + MessageGroup + Sync>(
        &self,
        queue_url: &str,
        messages: &[M],
    ) -> Result<(), Error> {
        let mut posted = self.posted.lock().unwrap_or_else(|p| p.into_inner());
        for message in messages {
            posted.push((
                queue_url.to_owned(),
                serde_json::to_value(message).map_err(|e| Error::Corrupt(e.to_string()))?,
            ));
        }
        Ok(())
    }

    async fn post_later<M: serde::Serialize + MessageGroup + Sync>(
        &self,
        queue_url: &str,
        message: &M,
        delay: Duration,
    ) -> Result<(), Error> {
        let value = serde_json::to_value(message).map_err(|e| Error::Corrupt(e.to_string()))?;
        self.posted_later.lock().unwrap_or_else(|p| p.into_inner()).push((queue_url.to_owned(), value, delay));
        Ok(())
    }
}
