//! Where challenges come from. The built-in provider asks a sum; a real captcha service can be
//! plugged in by implementing `CaptchaProvider` and putting it in `AppState`.

use rand::Rng;

use super::rules;

pub trait CaptchaProvider: Send + Sync {
    /// A new challenge: the prompt shown to the member and the answer kept on the server.
    fn challenge(&self) -> (String, String);
    /// Whether `given` answers a challenge whose kept answer is `expected`.
    fn accepts(&self, expected: &str, given: &str) -> bool;
}

/// "What is 7 + 5?", with numbers from 1 to 9.
pub struct ArithmeticCaptcha;

impl CaptchaProvider for ArithmeticCaptcha {
    fn challenge(&self) -> (String, String) {
        let mut rng = rand::rng();
        rules::arithmetic(rng.random_range(1..=9), rng.random_range(1..=9))
    }

    fn accepts(&self, expected: &str, given: &str) -> bool {
        rules::answer_matches(expected, given)
    }
}
