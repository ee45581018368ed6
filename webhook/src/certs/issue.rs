//! Issuing the serving certificate (and, when there is none yet, its CA): pure apart from key
//! generation, with the clock passed in.

use std::time::SystemTime;

use jiff::{SignedDuration, Timestamp};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use super::args::CertsArgs;
use super::{CertsError, Result};

/// An existing CA, as PEM text, to sign the serving certificate with.
#[derive(Debug, Clone)]
pub struct CaPem {
    /// Certificate (PEM).
    pub cert: String,
    /// PKCS#8 private key (PEM).
    pub key: String,
}

/// What [`issue`] produced, as PEM text.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The CA that signed the serving certificate (new or reused).
    pub ca: CaPem,
    /// Whether `ca` was made by this call.
    pub new_ca: bool,
    /// Serving certificate (PEM).
    pub tls_cert: String,
    /// Serving key, PKCS#8 (PEM).
    pub tls_key: String,
    /// DNS names and IP addresses the serving certificate is valid for.
    pub sans: Vec<String>,
    /// End of the serving certificate's validity.
    pub not_after: Timestamp,
}

/// How far `notBefore` is back-dated, so nodes with a slightly slow clock accept a fresh cert.
const CLOCK_SKEW: SignedDuration = SignedDuration::from_mins(5);

/// `days` days after `from`.
fn days_after(from: Timestamp, days: u32) -> Result<Timestamp> {
    Ok(from.checked_add(SignedDuration::from_hours(24 * i64::from(days)))?)
}

/// Issues a serving certificate for `sans`, signed by `existing_ca` or by a new CA.
///
/// Pure apart from key generation: `now` is the clock.
pub fn issue(
    args: &CertsArgs,
    sans: &[String],
    existing_ca: Option<&CaPem>,
    now: Timestamp,
) -> Result<Issued> {
    // X.509 times are whole seconds; so are the times reported from here.
    let now = Timestamp::from_second(now.as_second())?;
    let not_before = now.checked_sub(CLOCK_SKEW)?;
    let not_after = days_after(now, args.days)?;

    let (ca, new_ca) = match existing_ca {
        Some(ca) => (ca.clone(), false),
        None => (
            self::new_ca(args, not_before, days_after(now, args.ca_days)?)?,
            true,
        ),
    };
    let ca_key = KeyPair::from_pem(&ca.key).map_err(|e| bad_ca(args, format!("ca.key: {e}")))?;
    check_ca(args, &ca, &ca_key, not_after)?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert, &ca_key)
        .map_err(|e| bad_ca(args, format!("ca.crt: {e}")))?;

    let mut params = CertificateParams::new(sans.to_vec())?;
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, sans[0].as_str());
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = SystemTime::from(not_before).into();
    params.not_after = SystemTime::from(not_after).into();
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;

    Ok(Issued {
        ca,
        new_ca,
        tls_cert: cert.pem(),
        tls_key: key.serialize_pem(),
        sans: sans.to_vec(),
        not_after,
    })
}

fn new_ca(args: &CertsArgs, not_before: Timestamp, not_after: Timestamp) -> Result<CaPem> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(
        DnType::CommonName,
        format!("{} CA ({})", args.service, args.namespace),
    );
    params
        .distinguished_name
        .push(DnType::OrganizationName, "status-reporter");
    // Path length 0: this CA only signs serving certificates, never another CA.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = SystemTime::from(not_before).into();
    params.not_after = SystemTime::from(not_after).into();
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok(CaPem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// Refuses a CA that is not a CA, does not match its key, or expires before `cert_not_after`.
fn check_ca(args: &CertsArgs, ca: &CaPem, key: &KeyPair, cert_not_after: Timestamp) -> Result<()> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(ca.cert.as_bytes())
        .map_err(|e| bad_ca(args, format!("ca.crt is not PEM: {e}")))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| bad_ca(args, format!("ca.crt is not an X.509 certificate: {e}")))?;
    if !cert.is_ca() {
        return Err(bad_ca(
            args,
            "ca.crt is not a CA certificate (basicConstraints CA:FALSE or missing)".to_owned(),
        ));
    }
    if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return Err(bad_ca(args, "ca.key does not belong to ca.crt".to_owned()));
    }
    let ca_not_after = Timestamp::from_second(cert.validity().not_after.timestamp())?;
    if ca_not_after < cert_not_after {
        return Err(CertsError::CaExpiresTooSoon {
            ca_not_after,
            cert_not_after,
        });
    }
    Ok(())
}

fn bad_ca(args: &CertsArgs, reason: String) -> CertsError {
    CertsError::BadCa {
        dir: args.out_dir.clone(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_is_whole_seconds_from_the_clock_given() {
        let args = CertsArgs::from_flags(["--days", "30"]).unwrap();
        let now: Timestamp = "2026-11-30T10:20:30.999Z".parse().unwrap();
        let issued = issue(&args, &["svc.ns.svc".to_owned()], None, now).unwrap();
        assert_eq!(issued.not_after.to_string(), "2026-12-30T10:20:30Z");
        let (_, pem) = x509_parser::pem::parse_x509_pem(issued.tls_cert.as_bytes()).unwrap();
        let cert = pem.parse_x509().unwrap();
        assert_eq!(
            cert.validity().not_before.timestamp(),
            now.as_second() - 5 * 60
        );
        assert_eq!(
            cert.validity().not_after.timestamp(),
            issued.not_after.as_second()
        );
    }
}
