//! Budgets: `policy` decides, `store` keeps the shared daily/monthly books in the ledger file
//! (in team mode `ledger::postgres::budget` keeps them in PostgreSQL), `shared` runs either for
//! a proxy, `standings` reads where every scope stands (`smartproxy budget`, `/budgets`),
//! `SessionBudget` keeps the books of one `run` session, with a
//! reservation per request in flight that is settled to the real cost when the request ends.

pub mod policy;
pub mod scopes;
pub mod shared;
pub mod standings;
pub mod store;
pub mod window;

use std::sync::{Arc, Mutex};

pub use policy::Refusal;
pub use shared::SharedBudget;

/// The budget of one session: its limit, what its requests have cost and what is in flight.
#[derive(Debug, Clone)]
pub struct SessionBudget {
    limit_usd: Option<f64>,
    books: Arc<Mutex<Books>>,
}

#[derive(Debug, Default)]
struct Books {
    spent: f64,
    reserved: f64,
}

impl SessionBudget {
    pub fn new(limit_usd: Option<f64>) -> Self {
        Self {
            limit_usd,
            books: Arc::default(),
        }
    }

    pub fn limit_usd(&self) -> Option<f64> {
        self.limit_usd
    }

    /// Reserves `estimate_usd` for a request, or refuses it. The lock is held only for the
    /// arithmetic, never across an await.
    pub fn reserve(&self, estimate_usd: f64) -> Result<Reservation, Refusal> {
        let mut books = self
            .books
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        policy::decide(self.limit_usd, books.spent, books.reserved, estimate_usd)?;
        books.reserved += estimate_usd;
        Ok(Reservation {
            books: Arc::clone(&self.books),
            amount: estimate_usd,
            settled: false,
        })
    }

    /// What the session's finished requests cost, and what its requests in flight reserve.
    pub fn spent_and_reserved(&self) -> (f64, f64) {
        let books = self
            .books
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (books.spent, books.reserved)
    }

    /// What is left of the limit after spending and reservations.
    pub fn remaining_usd(&self) -> Option<f64> {
        let (spent, reserved) = self.spent_and_reserved();
        self.limit_usd
            .map(|limit| (limit - spent - reserved).max(0.0))
    }
}

/// A request's claim on the budget. Settle it with the real cost; dropping it unsettled releases
/// the claim (the request cost nothing that smartproxy knows of).
#[derive(Debug)]
pub struct Reservation {
    books: Arc<Mutex<Books>>,
    amount: f64,
    settled: bool,
}

impl Reservation {
    pub fn settle(mut self, actual_usd: Option<f64>) {
        self.release(actual_usd.unwrap_or(0.0));
    }

    fn release(&mut self, spent: f64) {
        if self.settled {
            return;
        }
        self.settled = true;
        let mut books = self
            .books
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        books.reserved = (books.reserved - self.amount).max(0.0);
        books.spent += spent;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.release(0.0);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reservations_bound_concurrent_spending() {
        let budget = SessionBudget::new(Some(1.0));
        let a = budget.reserve(0.4).unwrap();
        let b = budget.reserve(0.4).unwrap();
        assert!(budget.reserve(0.4).is_err(), "a third would overcommit");
        a.settle(Some(0.1));
        let c = budget.reserve(0.4).unwrap();
        drop(b);
        drop(c);
        let (spent, reserved) = budget.spent_and_reserved();
        assert!((spent - 0.1).abs() < 1e-12);
        assert!(reserved.abs() < 1e-12);
        assert_eq!(
            budget.remaining_usd().map(|r| (r * 10.0).round()),
            Some(9.0)
        );
    }

    #[test]
    fn no_limit_never_refuses() {
        let budget = SessionBudget::new(None);
        budget.reserve(1e9).unwrap().settle(Some(1e9));
        assert!(budget.reserve(1e9).is_ok());
        assert_eq!(budget.remaining_usd(), None);
    }
}
