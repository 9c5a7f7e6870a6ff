//! Agents' credentials, remembered for a moment.
//!
//! Every request of an agent names its credential, and a fleet sends
//! thousands a second: looking each up in the database cost a read (and a
//! hop to a database connection's thread) per request. The owner of a
//! credential is remembered for [`FRESH_FOR`]; revoking an agent on this
//! coordinator forgets them all at once, so a revoked agent is refused on
//! its next request here, and within [`FRESH_FOR`] on the other replicas.
//! Unknown credentials are never remembered (a stream of guesses cannot
//! fill the cache, and an agent enrolled on another replica is known at
//! once).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::AgentPrincipal;

/// How long an agent's credential is trusted without asking the database.
pub const FRESH_FOR: Duration = Duration::from_secs(2);

/// Credentials remembered at most (expired ones are dropped first).
const MOST: usize = 65_536;

/// Credential hash → its agent, and when that was read.
#[derive(Default)]
pub(super) struct AgentCredentials {
    known: Mutex<HashMap<String, (AgentPrincipal, Instant)>>,
}

impl AgentCredentials {
    /// The agent of `hash`, when read less than [`FRESH_FOR`] ago.
    pub fn get(&self, hash: &str) -> Option<AgentPrincipal> {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known
            .get(hash)
            .filter(|(_, at)| at.elapsed() < FRESH_FOR)
            .map(|(agent, _)| agent.clone())
    }

    /// Remembers that `hash` is `agent`'s credential, as read just now.
    pub fn put(&self, hash: &str, agent: &AgentPrincipal) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if known.len() >= MOST && !known.contains_key(hash) {
            known.retain(|_, (_, at)| at.elapsed() < FRESH_FOR);
            if known.len() >= MOST {
                known.clear();
            }
        }
        known.insert(hash.to_string(), (agent.clone(), Instant::now()));
    }

    /// Forgets every credential (an agent was revoked).
    pub fn forget_all(&self) {
        self.known.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: &str) -> AgentPrincipal {
        AgentPrincipal {
            id: id.into(),
            agency: "a".into(),
        }
    }

    #[test]
    fn remembered_until_forgotten() {
        let c = AgentCredentials::default();
        assert!(c.get("h1").is_none());
        c.put("h1", &agent("one"));
        assert_eq!(c.get("h1").map(|a| a.id), Some("one".into()));
        assert!(c.get("h2").is_none());
        c.forget_all();
        assert!(c.get("h1").is_none());
    }

    #[test]
    fn stale_entries_are_not_trusted() {
        let c = AgentCredentials::default();
        c.known.lock().unwrap().insert(
            "h".into(),
            (
                agent("old"),
                Instant::now() - FRESH_FOR - Duration::from_millis(1),
            ),
        );
        assert!(c.get("h").is_none());
    }

    #[test]
    fn a_full_cache_makes_room() {
        let c = AgentCredentials::default();
        for n in 0..MOST {
            c.put(&format!("h{n}"), &agent("x"));
        }
        c.put("new", &agent("new"));
        assert_eq!(c.get("new").map(|a| a.id), Some("new".into()));
        assert!(c.known.lock().unwrap().len() <= MOST);
    }
}
