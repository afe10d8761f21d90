//! The real [`Ec2`]: aws-sdk-ec2 and the IMDSv2 client of aws-config, on a current-thread
//! tokio runtime, every call bounded by the operation's deadline.
//!
//! The EC2 client is built on the first EC2 call (region, credentials), so the order of the
//! IMDS and EC2 requests is the order in which the agent asks.

use super::ec2::{ApiCode, ApiError, Attachment, Ec2, Eni};
use super::{values, AuthType, AwsEniParams, HttpUrl};
use aws_config::imds;
use aws_config::BehaviorVersion;
use aws_sdk_ec2::config::{Credentials, ProvideCredentials, Region};
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use ocf::{Deadline, OcfError};
use std::cell::OnceCell;
use std::future::Future;
use std::time::Duration;

/// The instance metadata service, when `imds_endpoint` is unset (always explicit: never
/// an endpoint from the environment or `~/.aws`).
const IMDS_DEFAULT: &str = "http://169.254.169.254";

pub struct Api<'a> {
    p: &'a AwsEniParams,
    rt: tokio::runtime::Runtime,
    imds: imds::Client,
    client: OnceCell<aws_sdk_ec2::Client>,
}

/// Bound a future by the deadline.
async fn within<T>(d: &Deadline, what: &str, f: impl Future<Output = T>) -> Result<T, OcfError> {
    let t = std::time::Instant::now();
    let r = tokio::time::timeout(d.remaining(), f).await.map_err(|_| {
        OcfError::generic(format!("{what}: no answer before the operation's timeout"))
    });
    tracing::debug!(
        "{what}: {} after {} ms",
        if r.is_ok() { "answered" } else { "no answer" },
        t.elapsed().as_millis()
    );
    r
}

/// An EC2 API error, classified by its code, with a reason of its code and message only
/// (never a request).
fn api_err<E: ProvideErrorMetadata + std::fmt::Debug>(what: &str, e: &SdkError<E>) -> ApiError {
    let (code, detail) = match e.as_service_error() {
        Some(s) => (
            s.code().map(ApiCode::of).unwrap_or(ApiCode::Other),
            format!(
                "{}: {}",
                s.code().unwrap_or("error"),
                s.message().unwrap_or("")
            ),
        ),
        None => (
            ApiCode::NoAnswer,
            match e {
                SdkError::TimeoutError(_) => "timed out".to_string(),
                SdkError::DispatchFailure(d) => format!(
                    "cannot reach the endpoint ({})",
                    d.as_connector_error()
                        .map(|c| c.to_string())
                        .unwrap_or_default()
                ),
                other => other.to_string(),
            },
        ),
    };
    tracing::debug!("EC2 {what} failed: {detail}");
    ApiError {
        code,
        error: OcfError::generic(format!("EC2 {what}: {detail}")),
    }
}

fn is_code<E: ProvideErrorMetadata>(e: &SdkError<E>, code: &str) -> bool {
    e.as_service_error().and_then(|s| s.code()) == Some(code)
}

impl<'a> Api<'a> {
    pub fn new(p: &'a AwsEniParams, d: &Deadline) -> Result<Api<'a>, OcfError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| OcfError::generic(format!("cannot start the async runtime: {e}")))?;
        let b = imds::Client::builder()
            .max_attempts(3)
            .connect_timeout(Duration::from_secs(1).min(d.remaining()))
            .read_timeout(Duration::from_secs(2).min(d.remaining()));
        let u = p
            .imds_endpoint
            .as_ref()
            .map(HttpUrl::as_str)
            .unwrap_or(IMDS_DEFAULT);
        let b = b.endpoint(u).map_err(|e| {
            OcfError::invalid_param("imds_endpoint", format!("'{u}' is not a URL ({e})"))
        })?;
        Ok(Api {
            p,
            rt,
            imds: b.build(),
            client: OnceCell::new(),
        })
    }

    fn imds_get(&self, d: &Deadline, path: &str) -> Result<String, OcfError> {
        let what = format!("IMDS {path}");
        let r = self
            .rt
            .block_on(within(d, &what, self.imds.get(path.to_string())))?;
        // A failed token fetch is an error here, never an empty token.
        r.map(String::from)
            .map_err(|e| OcfError::generic(format!("{what}: {e}")))
    }

    /// Run one EC2 request within the deadline.
    fn send<T, E: ProvideErrorMetadata + std::fmt::Debug>(
        &self,
        d: &Deadline,
        what: &str,
        f: impl Future<Output = Result<T, SdkError<E>>>,
    ) -> Result<T, ApiError> {
        self.rt
            .block_on(within(d, what, f))?
            .map_err(|e| api_err(what, &e))
    }

    /// Run one request that changes something, or only asks whether it may (`dry_run`:
    /// `DryRunOperation` means "would be allowed").
    fn act<T, E: ProvideErrorMetadata + std::fmt::Debug>(
        &self,
        d: &Deadline,
        what: &str,
        dry_run: bool,
        f: impl Future<Output = Result<T, SdkError<E>>>,
    ) -> Result<(), ApiError> {
        let what = if dry_run { "DryRun" } else { what };
        match self.rt.block_on(within(d, what, f))? {
            Ok(_) => Ok(()),
            Err(e) if dry_run && is_code(&e, "DryRunOperation") => Ok(()),
            Err(e) => Err(api_err(what, &e)),
        }
    }

    /// The EC2 client, built on first use.
    fn client(&self, d: &Deadline) -> Result<&aws_sdk_ec2::Client, OcfError> {
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        let c = self.build(d)?;
        Ok(self.client.get_or_init(|| c))
    }

    /// The EC2 client, built from the parameters only: no environment variable and no
    /// `~/.aws` setting (endpoint, region, user agent, retries) changes what it does, except
    /// the named profile's credentials with `auth_type=profile`.
    fn build(&self, d: &Deadline) -> Result<aws_sdk_ec2::Client, OcfError> {
        let p = self.p;
        let region = match &p.region {
            Some(r) => r.to_string(),
            None => {
                let r = self.imds_get(d, "/latest/meta-data/placement/region")?;
                if !values::region_ok(&r) {
                    return Err(OcfError::generic(format!(
                        "IMDS answered the region {}, which is not a region name",
                        ocf::params::shown(&r)
                    )));
                }
                r
            }
        };
        let creds = match p.auth_type {
            AuthType::Key => {
                let (Some(k), Some(s)) = (&p.access_key_id, &p.secret_access_key) else {
                    return Err(OcfError::configured(
                        "auth_type=key needs access_key_id and secret_access_key",
                    ));
                };
                Credentials::new(k.as_str(), s.expose(), None, None, "rustha-aws-eni")
            }
            AuthType::Role => self.fetch_credentials(d, "the instance profile (IMDS)", || {
                aws_config::imds::credentials::ImdsCredentialsProvider::builder()
                    .imds_client(self.imds.clone())
                    .build()
            })?,
            AuthType::Profile => {
                self.fetch_credentials(d, &format!("profile {}", p.profile), || {
                    aws_config::profile::ProfileFileCredentialsProvider::builder()
                        .profile_name(p.profile.as_str())
                        .build()
                })?
            }
        };
        credentials_usable(&creds)?;
        let mut b = aws_sdk_ec2::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region))
            .credentials_provider(creds)
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(4))
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(2))
                    .operation_attempt_timeout(Duration::from_secs(5))
                    .build(),
            );
        if let Some(u) = &p.endpoint_url {
            b = b.endpoint_url(u.as_str());
        }
        Ok(aws_sdk_ec2::Client::from_conf(b.build()))
    }

    /// Credentials from a provider (IMDS, a profile), fetched once, here, so they are
    /// checked before any request carries them.
    fn fetch_credentials<P: ProvideCredentials>(
        &self,
        d: &Deadline,
        what: &str,
        make: impl FnOnce() -> P,
    ) -> Result<Credentials, OcfError> {
        let r = self.rt.block_on(within(d, what, async {
            let provider = make();
            provider.provide_credentials().await
        }))?;
        r.map_err(|e| {
            OcfError::generic(format!(
                "no credentials from {what}: {}",
                DisplayErrorContext(&e)
            ))
        })
    }
}

impl Ec2 for Api<'_> {
    fn instance_id(&self, d: &Deadline) -> Result<String, OcfError> {
        self.imds_get(d, "/latest/meta-data/instance-id")
    }

    fn availability_zone(&self, d: &Deadline) -> Result<String, OcfError> {
        self.imds_get(d, "/latest/meta-data/placement/availability-zone")
    }

    fn describe(&self, d: &Deadline, eni: &str) -> Result<Eni, ApiError> {
        let what = "DescribeNetworkInterfaces";
        let c = self.client(d)?;
        let out = self.send(
            d,
            what,
            c.describe_network_interfaces()
                .network_interface_ids(eni)
                .send(),
        )?;
        let n = out.network_interfaces().first().ok_or_else(|| ApiError {
            code: ApiCode::NotFound,
            error: OcfError::generic(format!("EC2 {what}: no ENI {eni}")),
        })?;
        Ok(Eni {
            status: n
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            attachment: n.attachment().map(|a| Attachment {
                instance: a.instance_id().unwrap_or_default().to_string(),
                id: a.attachment_id().unwrap_or_default().to_string(),
                status: a
                    .status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                device_index: a.device_index().unwrap_or(-1),
            }),
            mac: n.mac_address().unwrap_or_default().to_string(),
            ips: n
                .private_ip_addresses()
                .iter()
                .filter_map(|x| x.private_ip_address().map(str::to_string))
                .collect(),
            primary_ip: n.private_ip_address().unwrap_or_default().to_string(),
            az: n.availability_zone().unwrap_or_default().to_string(),
            subnet: n.subnet_id().unwrap_or_default().to_string(),
        })
    }

    fn subnet_prefix(&self, d: &Deadline, subnet: &str) -> Result<u8, ApiError> {
        let c = self.client(d)?;
        let out = self.send(
            d,
            "DescribeSubnets",
            c.describe_subnets().subnet_ids(subnet).send(),
        )?;
        out.subnets()
            .first()
            .and_then(|s| s.cidr_block())
            .and_then(|c| c.split_once('/'))
            .and_then(|(_, p)| p.parse().ok())
            .ok_or_else(|| ApiError {
                code: ApiCode::Other,
                error: OcfError::generic(format!("subnet {subnet} has no IPv4 CIDR")),
            })
    }

    fn attach(
        &self,
        d: &Deadline,
        eni: &str,
        instance: &str,
        device_index: i32,
        dry_run: bool,
    ) -> Result<(), ApiError> {
        let c = self.client(d)?;
        let f = c
            .attach_network_interface()
            .network_interface_id(eni)
            .instance_id(instance)
            .device_index(device_index)
            .set_dry_run(dry_run.then_some(true))
            .send();
        self.act(d, "AttachNetworkInterface", dry_run, f)
    }

    fn detach(
        &self,
        d: &Deadline,
        attachment: &str,
        force: bool,
        dry_run: bool,
    ) -> Result<(), ApiError> {
        let c = self.client(d)?;
        let f = c.detach_network_interface().attachment_id(attachment);
        // A dry run asks about the plain detach; a real one says Force only when asked.
        let f = if dry_run {
            f.dry_run(true)
        } else {
            f.set_force(force.then_some(true))
        };
        self.act(d, "DetachNetworkInterface", dry_run, f.send())
    }
}

/// Credentials go into the `Authorization` and `X-Amz-Security-Token` headers, which
/// aws-runtime builds with `HeaderValue::from_str(..).unwrap()`: whatever their source
/// (parameters, IMDS, a profile file), they are printable ASCII without whitespace first.
fn credentials_usable(c: &Credentials) -> Result<(), OcfError> {
    let printable = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|b| (0x21..=0x7e).contains(&b))
    };
    let bad = if !printable(c.access_key_id(), 128) {
        Some("access key id")
    } else if !printable(c.secret_access_key(), 256) {
        Some("secret access key")
    } else if c.session_token().is_some_and(|t| !printable(t, 8192)) {
        Some("session token")
    } else {
        None
    };
    match bad {
        Some(what) => Err(OcfError::generic(format!(
            "the credentials' {what} is not printable ASCII without whitespace (not shown)"
        ))),
        None => Ok(()),
    }
}
