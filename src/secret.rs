//! Secrets (passwords, OAuth2 tokens) that never print.

use std::fmt;

/// A password or token. `Debug` and `Display` print `[redacted]`; the only way to the
/// value is [`Secret::expose`], which protocol code calls at the moment it writes the
/// secret to the wire.
///
/// ```
/// use mailmigrate::Secret;
/// let password = Secret::new("hunter2");
/// assert_eq!(format!("{password:?}"), "Secret([redacted])");
/// assert_eq!(password.expose(), "hunter2");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value. Call this only to send it to the server it is for.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// How to authenticate to a mail server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// User name and password (IMAP LOGIN or AUTHENTICATE PLAIN, POP3 USER/PASS, APOP or
    /// AUTH PLAIN). App passwords and authorization codes are passwords here.
    Password {
        /// The account name as the server knows it (often the address).
        user: String,
        /// The password.
        password: Secret,
    },
    /// SASL XOAUTH2 with an access token the host obtained (Gmail, Office 365).
    OAuth2 {
        /// The account's address.
        user: String,
        /// The bearer access token.
        token: Secret,
    },
}

impl Credentials {
    /// Password credentials.
    pub fn password(user: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials::Password {
            user: user.into(),
            password: Secret::new(password),
        }
    }

    /// OAuth2 (XOAUTH2) credentials.
    pub fn oauth2(user: impl Into<String>, token: impl Into<String>) -> Self {
        Credentials::OAuth2 {
            user: user.into(),
            token: Secret::new(token),
        }
    }

    /// The account name, safe to print.
    pub fn user(&self) -> &str {
        match self {
            Credentials::Password { user, .. } | Credentials::OAuth2 { user, .. } => user,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_debug_never_shows_the_secret() {
        let creds = Credentials::password("alice@example.com", "correct horse");
        let shown = format!("{creds:?} {creds:#?}");
        assert!(shown.contains("alice@example.com"));
        assert!(!shown.contains("correct horse"));
        let creds = Credentials::oauth2("bob@example.com", "ya29.token");
        assert!(!format!("{creds:?}").contains("ya29"));
    }
}
