//! Work done after the answer. An anonymous request must not tell by its timing whether an
//! account exists, so what only an existing account causes — recording a failed sign-in;
//! finding a reset address's accounts, storing their reset tokens and mailing the links — is
//! queued here and done off the request path, by [`Hub::run_jobs`] (started with the server)
//! or by [`Hub::run_queued_jobs`].

use crate::{AppError, Hub};
use lockstep_domain::{EmailAddress, OrganizationId, UserId};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use time::OffsetDateTime;

/// How long a runner waits after a job is queued before doing it.
const JOB_DELAY: std::time::Duration = std::time::Duration::from_millis(200);

/// A failed sign-in to record on an existing account (counted on the account as it is stored
/// when it is recorded, so failures queued together all count).
#[derive(Debug)]
pub(crate) struct SignInFailure {
    pub organization: OrganizationId,
    pub user: UserId,
    pub at: OffsetDateTime,
}

/// A password reset asked for an address (it may have no account).
#[derive(Debug)]
pub(crate) struct ResetRequest {
    pub email: EmailAddress,
    pub at: OffsetDateTime,
}

/// One queue, drained by one runner at a time.
struct Queue<T> {
    items: Mutex<VecDeque<T>>,
    /// Held while an item is being done, so a drain waits for one in progress.
    running: tokio::sync::Mutex<()>,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue {
            items: Mutex::new(VecDeque::new()),
            running: tokio::sync::Mutex::new(()),
        }
    }
}

impl<T> Queue<T> {
    fn push(&self, item: T) {
        self.items
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(item);
    }

    fn pop(&self) -> Option<T> {
        self.items
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    }

    fn len(&self) -> usize {
        self.items
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// The failed sign-ins not yet recorded: queued, and the one being recorded.
#[derive(Default)]
struct Failures {
    queued: VecDeque<SignInFailure>,
    /// The account and time of the failure being recorded.
    recording: Option<(UserId, OffsetDateTime)>,
}

/// The hub's queued work. Failed sign-ins and mails have queues of their own, so a slow mail
/// server never holds up a sign-in.
#[derive(Default)]
pub(crate) struct Jobs {
    sign_in_failures: Mutex<Failures>,
    /// Held while failures are being recorded, so a sign-in can wait for them.
    recording: tokio::sync::Mutex<()>,
    password_resets: Queue<ResetRequest>,
    added: tokio::sync::Notify,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs")
            .field(
                "sign_in_failures",
                &self
                    .sign_in_failures
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .queued
                    .len(),
            )
            .field("password_resets", &self.password_resets.len())
            .finish()
    }
}

impl Hub {
    pub(crate) fn queue_sign_in_failure(&self, failure: SignInFailure) {
        self.failures().queued.push_back(failure);
        self.jobs.added.notify_one();
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, Failures> {
        self.jobs
            .sign_in_failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// When the failed sign-ins of `user` that are queued or being recorded happened, oldest
    /// first. A sign-in counts them with the stored ones instead of waiting for them, so an
    /// account with a recent failure answers as fast as an address without an account.
    pub(crate) fn pending_sign_in_failures(&self, user: UserId) -> Vec<OffsetDateTime> {
        let failures = self.failures();
        failures
            .recording
            .filter(|(u, _)| *u == user)
            .map(|(_, at)| at)
            .into_iter()
            .chain(
                failures
                    .queued
                    .iter()
                    .filter(|f| f.user == user)
                    .map(|f| f.at),
            )
            .collect()
    }

    pub(crate) fn queue_password_reset(&self, request: ResetRequest) {
        self.jobs.password_resets.push(request);
        self.jobs.added.notify_one();
    }

    /// Records the queued failed sign-ins (and waits for those being recorded).
    pub(crate) async fn settle_sign_in_failures(&self) {
        let _recording = self.jobs.recording.lock().await;
        loop {
            let failure = {
                let mut failures = self.failures();
                let next = failures.queued.pop_front();
                failures.recording = next.as_ref().map(|f| (f.user, f.at));
                next
            };
            let Some(failure) = failure else { break };
            let user = failure.user;
            if let Err(err) = self.record_failure(failure).await {
                tracing::error!(user = %user, error = %err, "a failed sign-in could not be recorded");
            }
        }
    }

    /// Does every queued job, then returns.
    pub async fn run_queued_jobs(&self) {
        self.settle_sign_in_failures().await;
        let queue = &self.jobs.password_resets;
        let _running = queue.running.lock().await;
        while let Some(request) = queue.pop() {
            if let Err(err) = self.send_password_resets(request).await {
                tracing::error!(error = %err, "a password reset could not be started");
            }
        }
    }

    /// Does queued jobs as they come, until `shutdown` is set.
    pub async fn run_jobs(self: Arc<Self>, shutdown: Arc<AtomicBool>) {
        while !shutdown.load(Ordering::Relaxed) {
            self.run_queued_jobs().await;
            // Woken by a new job; the timeout re-checks `shutdown`.
            let woken = tokio::time::timeout(
                std::time::Duration::from_secs(1),
                self.jobs.added.notified(),
            )
            .await;
            if woken.is_ok() {
                // Let the answer that queued the job leave first: a job started at once competes
                // with it for the processor, and its delay would tell that the job exists.
                tokio::time::sleep(JOB_DELAY).await;
            }
        }
    }
}

/// Errors of queued jobs are logged, never answered: nobody waits for them.
pub(crate) type JobResult = Result<(), AppError>;
