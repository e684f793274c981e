//! Pure rules of anti-cheat: the built-in arithmetic captcha and how the gate treats each action.

use serde::{Deserialize, Serialize};

/// A challenge as stored between `CAPTCHA_REQUIRED` and `solveCaptcha`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    pub member_id: i64,
    pub action: String,
    pub answer: String,
    pub attempts_left: u32,
}

pub const CAPTCHA_ATTEMPTS: u32 = 3;

/// `What is 7 + 5?` for two numbers from 1 to 9; the answer is kept server-side.
pub fn arithmetic(a: u32, b: u32) -> (String, String) {
    (format!("What is {a} + {b}?"), (a + b).to_string())
}

/// Answers are compared as typed, without surrounding spaces.
pub fn answer_matches(expected: &str, given: &str) -> bool {
    expected == given.trim()
}

/// The challenge after a wrong answer, or `None` once its attempts are used up.
pub fn after_wrong_answer(mut challenge: Challenge) -> Option<Challenge> {
    challenge.attempts_left = challenge.attempts_left.saturating_sub(1);
    (challenge.attempts_left > 0).then_some(challenge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arithmetic_prompt_has_its_sum_as_answer() {
        assert_eq!(arithmetic(7, 5), ("What is 7 + 5?".into(), "12".into()));
        assert!(answer_matches("12", " 12 "));
        assert!(!answer_matches("12", "13"));
        assert!(!answer_matches("12", "twelve"));
    }

    #[test]
    fn a_challenge_survives_two_wrong_answers_not_three() {
        let c = Challenge {
            member_id: 1,
            action: "transfer".into(),
            answer: "3".into(),
            attempts_left: CAPTCHA_ATTEMPTS,
        };
        let c = after_wrong_answer(c).unwrap();
        let c = after_wrong_answer(c).unwrap();
        assert_eq!(c.attempts_left, 1);
        assert!(after_wrong_answer(c).is_none());
    }
}
