//! Pure rules of anti-cheat: the built-in arithmetic captcha and how the gate treats each action.

use serde::{Deserialize, Serialize};

use crate::config::RatePolicy;

/// A device-keyed soft limit also counts per member, with this many times the device's count:
/// the device id is the client's choice, so rotating it must not reset the limit, while a
/// member with a phone and a tablet keeps room for both.
pub const MEMBER_ALLOWANCE_PER_DEVICE: u64 = 2;

/// The member allowance that goes with a device-keyed policy: same window, twice the count.
pub fn member_allowance(device: RatePolicy) -> RatePolicy {
    RatePolicy {
        count: device.count.saturating_mul(MEMBER_ALLOWANCE_PER_DEVICE),
        window: device.window,
    }
}

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
    fn a_member_may_do_twice_what_one_device_may_in_the_same_window() {
        let device = RatePolicy {
            count: 5,
            window: chrono::Duration::seconds(60),
        };
        assert_eq!(
            member_allowance(device),
            RatePolicy {
                count: 10,
                window: device.window
            }
        );
        let huge = RatePolicy {
            count: u64::MAX,
            ..device
        };
        assert_eq!(member_allowance(huge).count, u64::MAX);
    }

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
