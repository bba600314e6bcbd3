//! Errors a connection can end with, worded for the person in front of the browser.
//!
//! IronRDP, sspi and rustls report failures in protocol terms; this module is the one place that
//! turns them into the few cases the portal distinguishes (certificate changed, password refused,
//! ...) and a readable sentence for everything else.

use ironrdp_connector::sspi::credssp::NStatusCode;
use ironrdp_connector::sspi::ErrorKind as SspiErrorKind;
use ironrdp_connector::{ConnectorError, ConnectorErrorKind};
use ironrdp_pdu::nego::FailureCode;
use ironrdp_session::SessionError;

/// Why the connection failed. `Display` is a sentence fit to show to users.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// A pin was given and the workstation's certificate does not match it (possible interception).
    #[error(
        "the workstation presented a different security certificate than the one on record \
         (expected SHA-256 {expected}, got {actual})"
    )]
    CertificateChanged { expected: String, actual: String },

    /// The server refused TLS during negotiation, or the TLS handshake failed.
    #[error("a secure (TLS) connection to the workstation could not be established: {0}")]
    TlsRefused(String),

    /// The server insists on NLA (CredSSP) but it was not offered.
    #[error("the workstation requires Network Level Authentication, which this client did not offer")]
    NlaRequiredButDisabled,

    /// Only legacy Standard RDP Security (no TLS) is enabled on the server; this client refuses it.
    #[error(
        "the workstation only offers legacy unencrypted RDP security; enable TLS or Network Level \
         Authentication on it"
    )]
    StandardSecurityOnly,

    /// NLA rejected the user name or password.
    #[error("the workstation rejected the user name or password")]
    CredentialsRejected,

    /// NLA accepted the credentials but the account may not sign in remotely (disabled, expired, ...).
    #[error("the workstation refused to sign this account in: {0}")]
    AccountRestricted(String),

    /// The server wants Kerberos; only NTLM is supported from the browser.
    #[error(
        "the workstation requires Kerberos authentication, which is not supported here; allow NTLM \
         for remote sign-in"
    )]
    KerberosUnsupported,

    /// The server closed the transport before the desktop appeared (bytes ended unexpectedly).
    #[error("the workstation closed the connection during sign-in")]
    ClosedDuringSignIn,

    /// The parameters passed to [`crate::RdpClient::new`] are unusable.
    #[error("invalid connection settings: {0}")]
    InvalidParams(String),

    /// Anything else the server sent that does not follow the protocol, or an internal failure.
    #[error("RDP protocol error: {0}")]
    Protocol(String),

    /// The connection already ended (an earlier error, a termination or `shutdown`).
    #[error("the connection has already ended")]
    Closed,
}

impl ClientError {
    pub(crate) fn protocol(message: impl Into<String>) -> Self {
        Self::Protocol(message.into())
    }
}

/// Maps a connector failure (negotiation, CredSSP, connection sequence) to a user-facing error.
pub(crate) fn from_connector(error: &ConnectorError) -> ClientError {
    match error.kind() {
        ConnectorErrorKind::Negotiation(failure) => match failure.code() {
            FailureCode::HYBRID_REQUIRED_BY_SERVER => ClientError::NlaRequiredButDisabled,
            FailureCode::SSL_NOT_ALLOWED_BY_SERVER => ClientError::StandardSecurityOnly,
            FailureCode::SSL_CERT_NOT_ON_SERVER => {
                ClientError::TlsRefused("the workstation has no TLS certificate configured".to_owned())
            }
            _ => ClientError::TlsRefused(failure.to_string()),
        },
        ConnectorErrorKind::AccessDenied => ClientError::CredentialsRejected,
        ConnectorErrorKind::Credssp(sspi_error) => from_sspi(sspi_error),
        _ => ClientError::Protocol(error.report().to_string()),
    }
}

/// Maps an sspi (NTLM/CredSSP) failure: the server's NTSTATUS tells a wrong password apart.
pub(crate) fn from_sspi(error: &ironrdp_connector::sspi::Error) -> ClientError {
    if let Some(status) = error.nstatus {
        match status {
            NStatusCode::LOGON_FAILURE
            | NStatusCode::WRONG_PASSWORD
            | NStatusCode::NO_SUCH_USER
            | NStatusCode::INVALID_ACCOUNT_NAME => return ClientError::CredentialsRejected,
            NStatusCode::PASSWORD_EXPIRED => return ClientError::AccountRestricted("the password has expired".into()),
            NStatusCode::ACCOUNT_DISABLED => return ClientError::AccountRestricted("the account is disabled".into()),
            NStatusCode::ACCOUNT_RESTRICTION
            | NStatusCode::INVALID_LOGON_HOURS
            | NStatusCode::INVALID_WORKSTATION
            | NStatusCode::LOGON_NOT_GRANTED
            | NStatusCode::LOGON_TYPE_NOT_GRANTED => {
                return ClientError::AccountRestricted(format!("account restriction (NTSTATUS 0x{:08x})", status.0))
            }
            _ => {}
        }
    }
    match error.error_type {
        SspiErrorKind::LogonDenied | SspiErrorKind::UnknownCredentials | SspiErrorKind::NoCredentials => {
            ClientError::CredentialsRejected
        }
        _ => ClientError::Protocol(format!("Network Level Authentication failed: {error}")),
    }
}

/// Maps a failure of the active session (decoding, encoding).
pub(crate) fn from_session(error: &SessionError) -> ClientError {
    ClientError::Protocol(error.report().to_string())
}
