//! Work done after the answer. An anonymous request must not tell by its timing whether an
//! account exists, so what only an existing account causes — recording a failed sign-in;
//! finding a reset address's accounts, storing their reset tokens and mailing the links — is
//! queued here and done off the request path, by [`Hub::run_jobs`] (started with the server)
//! or by [`Hub::run_queued_jobs`].

use crate::{AppError, Hub};
use lockstep_auth::LoginFailures;
use lockstep_domain::{EmailAddress, OrganizationId, UserId};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use time::OffsetDateTime;

/// A failed sign-in to record on an existing account.
#[derive(Debug)]
pub(crate) struct SignInFailure {
    pub organization: OrganizationId,
    pub user: UserId,
    pub failures: LoginFailures,
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

/// The hub's queued work. Failed sign-ins and mails have queues of their own, so a slow mail
/// server never holds up a sign-in.
#[derive(Default)]
pub(crate) struct Jobs {
    sign_in_failures: Queue<SignInFailure>,
    password_resets: Queue<ResetRequest>,
    added: tokio::sync::Notify,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs")
            .field("sign_in_failures", &self.sign_in_failures.len())
            .field("password_resets", &self.password_resets.len())
            .finish()
    }
}

impl Hub {
    pub(crate) fn queue_sign_in_failure(&self, failure: SignInFailure) {
        self.jobs.sign_in_failures.push(failure);
        self.jobs.added.notify_one();
    }

    pub(crate) fn queue_password_reset(&self, request: ResetRequest) {
        self.jobs.password_resets.push(request);
        self.jobs.added.notify_one();
    }

    /// Records the queued failed sign-ins (and waits for one being recorded): a sign-in calls
    /// it first, whatever its address, so lockout counts every earlier failure.
    pub(crate) async fn settle_sign_in_failures(&self) {
        let queue = &self.jobs.sign_in_failures;
        let _running = queue.running.lock().await;
        while let Some(failure) = queue.pop() {
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
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(1),
                self.jobs.added.notified(),
            )
            .await;
        }
    }
}

/// Errors of queued jobs are logged, never answered: nobody waits for them.
pub(crate) type JobResult = Result<(), AppError>;
