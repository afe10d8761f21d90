//! `aws-eni`: move an Elastic Network Interface (and so its private IPs) to this EC2
//! instance.
//!
//! start: instance id from IMDSv2; describe the ENI; detach it from another instance
//! (force only if asked) and poll until it is `available`; attach it here at
//! `device_index` and poll until `attached`; wait until the OS shows an interface with
//! the ENI's MAC and the address is configured (configuring it if asked); record MAC, IP
//! and prefix. Polls every 200-250 ms inside the operation's deadline;
//! no fixed sleeps, no SDK waiters (their first delay is 20 s).
//!
//! monitor (depth 0) is local only: the recorded MAC's interface holds the address. Depth
//! 10 also asks EC2 that the attachment is ours. stop detaches only from *this* instance.

mod values;

use crate::netlink::{Link, Netlink, NewAddr};
use crate::state::{Record, StateFile};
use aws_config::imds;
use aws_config::BehaviorVersion;
use aws_sdk_ec2::config::{Credentials, ProvideCredentials, Region};
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata};
use ocf::{Action, ActionSpec, Agent, AgentInfo, Ctx, Deadline, OcfError, ParamSpec, Status};
use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;
pub use values::{AccessKeyId, EniId, HttpUrl, PrivateIpv4, ProfileName, RegionName, SecretKey};

ocf::choice! {
    /// Where the API credentials come from.
    pub enum AuthType { Role = "role", Key = "key", Profile = "profile" }
}

ocf::params! {
    pub struct AwsEniParams {
        eni_id: EniId => ParamSpec::new(
            "ENI id",
            "The Elastic Network Interface to move to the node that runs the resource: eni- \
             and 8 or 17 lowercase hex digits, e.g. eni-0123456789abcdef0. It carries the \
             virtual IP(s), its MAC and security groups.",
        ).unique().example("eni-0123456789abcdef0"),
        ip: Option<PrivateIpv4> => ParamSpec::new(
            "Private IP",
            "The private IPv4 address of the ENI that must be live on this node (a unicast \
             IPv4 address; IPv6 is not supported). Unset: the ENI's primary private IP.",
        ),
        device_index: u32 => ParamSpec::new(
            "Device index",
            "The device index at which the ENI is attached (0 is the instance's primary \
             interface and cannot be used).",
        ).default("1"),
        region: Option<RegionName> => ParamSpec::new(
            "Region",
            "The AWS region, e.g. eu-west-1 or us-gov-west-1. Unset: the instance's region \
             from IMDS.",
        ),
        auth_type: AuthType => ParamSpec::new(
            "Credentials",
            "role: the instance profile's credentials from IMDS (recommended). profile: a \
             profile of root's ~/.aws/config and ~/.aws/credentials (see profile). key: the \
             access_key_id / secret_access_key parameters.",
        ).default("role"),
        profile: ProfileName => ParamSpec::new(
            "Profile",
            "The profile used with auth_type=profile (1 to 64 of A-Z a-z 0-9 _ . @ + -). A \
             missing profile is an error, never a silent fallback to other credentials.",
        ).default("default"),
        access_key_id: Option<AccessKeyId> => ParamSpec::new(
            "Access key id",
            "With auth_type=key: the access key id (16 to 128 of A-Z and 0-9).",
        ),
        secret_access_key: Option<SecretKey> => ParamSpec::new(
            "Secret access key",
            "With auth_type=key: the secret access key (printable ASCII, no whitespace). \
             Never logged.",
        ).secret(),
        force_detach: bool => ParamSpec::new(
            "Force detach",
            "Detach the ENI from another instance with Force (for a peer that is dead and not \
             yet fenced). AWS calls this a last resort: it can leave the device index unusable \
             on that instance until it is stopped and started.",
        ).default("false"),
        endpoint_url: Option<HttpUrl> => ParamSpec::new(
            "EC2 endpoint",
            "EC2 API endpoint URL (http:// or https://, a host, an optional port and path), \
             e.g. a VPC interface endpoint. Unset: the region's public endpoint.",
        ),
        imds_endpoint: Option<HttpUrl> => ParamSpec::new(
            "IMDS endpoint",
            "Instance metadata endpoint URL (as endpoint_url). Unset: http://169.254.169.254.",
        ),
        configure_address: bool => ParamSpec::new(
            "Configure the address",
            "When the OS has not configured the ENI's address on the new interface (no DHCP \
             hotplug handling), add it (with the subnet's prefix) and bring the link up.",
        ).default("true"),
    }
}

pub struct AwsEni;

const NAME: &str = "aws-eni";

/// The instance metadata service, when `imds_endpoint` is unset (always explicit: never
/// an endpoint from the environment or `~/.aws`).
const IMDS_DEFAULT: &str = "http://169.254.169.254";

fn rt() -> Result<tokio::runtime::Runtime, OcfError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| OcfError::generic(format!("cannot start the async runtime: {e}")))
}

/// Bound a future by the deadline.
async fn within<T>(d: &Deadline, what: &str, f: impl Future<Output = T>) -> Result<T, OcfError> {
    tokio::time::timeout(d.remaining(), f)
        .await
        .map_err(|_| OcfError::generic(format!("{what}: no answer before the operation's timeout")))
}

fn mac_bytes(s: &str) -> Option<Vec<u8>> {
    let v: Vec<u8> = s
        .split(':')
        .map(|x| u8::from_str_radix(x, 16).ok())
        .collect::<Option<_>>()?;
    (v.len() == 6).then_some(v)
}

/// An EC2 API error, as text for exit reasons (code and message only: never a request).
fn api_err<E: ProvideErrorMetadata + std::fmt::Debug>(
    what: &str,
    e: &aws_sdk_ec2::error::SdkError<E>,
) -> OcfError {
    let detail = match e.as_service_error() {
        Some(s) => format!(
            "{}: {}",
            s.code().unwrap_or("error"),
            s.message().unwrap_or("")
        ),
        None => match e {
            aws_sdk_ec2::error::SdkError::TimeoutError(_) => "timed out".to_string(),
            aws_sdk_ec2::error::SdkError::DispatchFailure(d) => {
                format!(
                    "cannot reach the endpoint ({})",
                    d.as_connector_error()
                        .map(|c| c.to_string())
                        .unwrap_or_default()
                )
            }
            other => other.to_string(),
        },
    };
    OcfError::generic(format!("EC2 {what}: {detail}"))
}

fn is_code<E: ProvideErrorMetadata>(e: &aws_sdk_ec2::error::SdkError<E>, code: &str) -> bool {
    e.as_service_error().and_then(|s| s.code()) == Some(code)
}

/// What EC2 says about the ENI.
#[derive(Clone, Debug)]
struct Eni {
    status: String,
    /// (instance, attachment id, attachment status, device index)
    attachment: Option<(String, String, String, i32)>,
    mac: String,
    ips: Vec<String>,
    primary_ip: String,
    az: String,
    subnet: String,
}

impl Eni {
    fn attached_to(&self, instance: &str) -> bool {
        self.attachment
            .as_ref()
            .is_some_and(|a| a.0 == instance && a.2 == "attached")
    }
}

/// The longest wait between two describes while an attachment changes state: a move
/// then ends at most this long after EC2 finished each transition.
const POLL_MAX: Duration = Duration::from_millis(250);

struct Api {
    rt: tokio::runtime::Runtime,
    imds: imds::Client,
}

impl Api {
    fn new(p: &AwsEniParams, d: &Deadline) -> Result<Api, OcfError> {
        let rt = rt()?;
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
            rt,
            imds: b.build(),
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

    fn instance_id(&self, d: &Deadline) -> Result<String, OcfError> {
        self.imds_get(d, "/latest/meta-data/instance-id")
    }

    /// The EC2 client, built from the parameters only: no environment variable and no
    /// `~/.aws` setting (endpoint, region, user agent, retries) changes what it does, except
    /// the named profile's credentials with `auth_type=profile`.
    fn ec2(&self, p: &AwsEniParams, d: &Deadline) -> Result<aws_sdk_ec2::Client, OcfError> {
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

    fn describe(&self, c: &aws_sdk_ec2::Client, d: &Deadline, eni: &str) -> Result<Eni, OcfError> {
        let out = self.rt.block_on(within(
            d,
            "DescribeNetworkInterfaces",
            c.describe_network_interfaces()
                .network_interface_ids(eni)
                .send(),
        ))?;
        let out = out.map_err(|e| {
            if is_code(&e, "InvalidNetworkInterfaceID.NotFound")
                || is_code(&e, "InvalidNetworkInterfaceID.Malformed")
            {
                OcfError::configured(format!("ENI {eni} does not exist"))
            } else {
                api_err("DescribeNetworkInterfaces", &e)
            }
        })?;
        let n = out
            .network_interfaces()
            .first()
            .ok_or_else(|| OcfError::configured(format!("ENI {eni} does not exist")))?;
        Ok(Eni {
            status: n
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            attachment: n.attachment().map(|a| {
                (
                    a.instance_id().unwrap_or_default().to_string(),
                    a.attachment_id().unwrap_or_default().to_string(),
                    a.status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    a.device_index().unwrap_or(-1),
                )
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

    fn subnet_prefix(
        &self,
        c: &aws_sdk_ec2::Client,
        d: &Deadline,
        subnet: &str,
    ) -> Result<u8, OcfError> {
        let out = self
            .rt
            .block_on(within(
                d,
                "DescribeSubnets",
                c.describe_subnets().subnet_ids(subnet).send(),
            ))?
            .map_err(|e| api_err("DescribeSubnets", &e))?;
        out.subnets()
            .first()
            .and_then(|s| s.cidr_block())
            .and_then(|c| c.split_once('/'))
            .and_then(|(_, p)| p.parse().ok())
            .ok_or_else(|| OcfError::generic(format!("subnet {subnet} has no IPv4 CIDR")))
    }

    /// Poll `describe` until `done` holds, 200 ms growing to [`POLL_MAX`], within `d`.
    fn wait_for(
        &self,
        c: &aws_sdk_ec2::Client,
        d: &Deadline,
        eni: &str,
        what: &str,
        done: impl Fn(&Eni) -> bool,
    ) -> Result<Eni, OcfError> {
        let mut step = Duration::from_millis(200);
        loop {
            // A throttled or failed describe is retried by the SDK; a persistent failure
            // keeps us polling until the deadline, reported with the last error.
            let last = match self.describe(c, d, eni) {
                Ok(e) if done(&e) => return Ok(e),
                Ok(e) => format!(
                    "still {} ({:?})",
                    e.status,
                    e.attachment.as_ref().map(|a| &a.2)
                ),
                Err(e) => e.reason,
            };
            if d.remaining() <= step {
                return Err(OcfError::generic(format!(
                    "{what}: not done before the operation's timeout; last seen: {last}"
                )));
            }
            std::thread::sleep(step);
            step = (step * 2).min(POLL_MAX);
        }
    }
}

/// The local interface with `mac`, if the OS shows one.
fn link_with_mac(nl: &Netlink, d: &Deadline, mac: &[u8]) -> Result<Option<Link>, OcfError> {
    Ok(nl.links(d)?.into_iter().find(|l| l.hw_addr == mac))
}

fn has_ip(nl: &Netlink, d: &Deadline, index: u32, ip: IpAddr) -> Result<bool, OcfError> {
    Ok(nl
        .addrs(d, ip.is_ipv6())?
        .iter()
        .any(|a| a.index == index && a.ip == ip))
}

struct Held {
    mac: Vec<u8>,
    ip: IpAddr,
    prefix: u8,
    /// The start that wrote the record saw the ENI attached here and its interface
    /// (`attached=1`, written last). Then a MAC that is no longer here means the ENI left
    /// this node; before that, an attach may still be in flight.
    attached: bool,
}

impl Held {
    fn from_record(r: &Record) -> Option<Held> {
        Some(Held {
            mac: mac_bytes(r.get("mac")?)?,
            ip: r.parsed("ip")?,
            prefix: r.parsed("prefix")?,
            attached: r.get("attached") == Some("1"),
        })
    }
}

/// What validate hands start: the device index, checked to fit EC2's range.
pub struct Slot {
    device_index: i32,
}

impl Agent for AwsEni {
    type Params = AwsEniParams;
    type Plan = Slot;
    const INFO: AgentInfo = AgentInfo {
        name: NAME,
        version: env!("CARGO_PKG_VERSION"),
        shortdesc: "Moves an AWS Elastic Network Interface to this instance",
        longdesc: "Moves an Elastic Network Interface, and with it its private IP addresses, \
            MAC and security groups, to the EC2 instance that runs the resource: detach from \
            the other instance, wait until available, attach here, wait until attached and \
            until the OS shows the interface with its address (configured if the OS does \
            not). Stop detaches it only when it is attached to this instance. The monitor \
            is local (interface and address present, no API call); depth 10 also asks EC2. \
            validate-all at depth 10 proves the IAM permissions with DryRun calls.",
        actions: &[
            ActionSpec::new(Action::Start, 60),
            ActionSpec::new(Action::Stop, 60),
            ActionSpec::new(Action::Monitor, 20).interval(10).depth(0),
            ActionSpec::new(Action::MetaData, 5),
            ActionSpec::new(Action::ValidateAll, 20),
        ],
    };

    fn validate(p: &AwsEniParams, ctx: &Ctx) -> Result<Slot, OcfError> {
        // Each value was checked whole when parsed (values.rs); here only what needs
        // two of them. All of it before any network call.
        if p.device_index == 0 {
            return Err(OcfError::invalid_param(
                "device_index",
                "0 is the instance's primary interface",
            ));
        }
        let device_index = i32::try_from(p.device_index).map_err(|_| {
            OcfError::invalid_param(
                "device_index",
                format!("{} is out of EC2's range", p.device_index),
            )
        })?;
        if p.auth_type == AuthType::Key
            && (p.access_key_id.is_none() || p.secret_access_key.is_none())
        {
            return Err(OcfError::configured(
                "auth_type=key needs access_key_id and secret_access_key",
            ));
        }
        if ctx.check_level() >= 10 {
            let d = &ctx.deadline;
            let api = Api::new(p, d)?;
            let me = api.instance_id(d)?;
            let c = api.ec2(p, d)?;
            let eni = api.describe(&c, d, p.eni_id.as_str()).map_err(|e| {
                if e.reason.contains("UnauthorizedOperation") {
                    OcfError::configured(format!(
                        "DescribeNetworkInterfaces is not permitted: {}",
                        e.reason
                    ))
                } else {
                    e
                }
            })?;
            // DryRun: DryRunOperation means "would be allowed".
            let att = eni
                .attachment
                .as_ref()
                .map(|a| a.1.clone())
                .unwrap_or_else(|| "eni-attach-00000000".into());
            let checks: [(&str, Result<(), OcfError>); 2] = [
                (
                    "AttachNetworkInterface",
                    dry(
                        &api,
                        d,
                        c.attach_network_interface()
                            .network_interface_id(p.eni_id.as_str())
                            .instance_id(&me)
                            .device_index(device_index)
                            .dry_run(true)
                            .send(),
                    ),
                ),
                (
                    "DetachNetworkInterface",
                    dry(
                        &api,
                        d,
                        c.detach_network_interface()
                            .attachment_id(att)
                            .dry_run(true)
                            .send(),
                    ),
                ),
            ];
            for (action, r) in checks {
                r.map_err(|e| {
                    OcfError::configured(format!("{action} is not permitted: {}", e.reason))
                })?;
            }
        }
        Ok(Slot { device_index })
    }

    fn start(p: &AwsEniParams, slot: Slot, ctx: &Ctx) -> Result<(), OcfError> {
        let d = &ctx.deadline;
        let api = Api::new(p, d)?;
        let me = api.instance_id(d)?;
        let c = api.ec2(p, d)?;
        let eni = api.describe(&c, d, p.eni_id.as_str())?;
        let ip: IpAddr = match p.ip.map(|i| IpAddr::V4(i.0)) {
            Some(ip) => {
                if !eni.ips.contains(&ip.to_string()) {
                    return Err(OcfError::configured(format!(
                        "{ip} is not a private IP of {} ({})",
                        p.eni_id,
                        eni.ips.join(", ")
                    )));
                }
                ip
            }
            None => eni.primary_ip.parse().map_err(|_| {
                OcfError::generic(format!("{} has no primary private IP", p.eni_id))
            })?,
        };
        // From IMDS, not DescribeInstances: one API round trip less before the move.
        let my_az = api.imds_get(d, "/latest/meta-data/placement/availability-zone")?;
        if !eni.az.is_empty() && !my_az.is_empty() && eni.az != my_az {
            return Err(OcfError::configured(format!(
                "{} is in {} but this instance ({me}) is in {my_az}: an ENI cannot leave its availability zone",
                p.eni_id, eni.az
            )));
        }
        let mac = mac_bytes(&eni.mac)
            .ok_or_else(|| OcfError::generic(format!("{} has no MAC address", p.eni_id)))?;

        // Recorded before anything changes: a stop after a failed or timed-out start
        // then knows the MAC to look for, even without the API.
        let save = |prefix: u8, configured: bool, attached: bool| {
            let mut r = Record::default();
            r.set("eni", &p.eni_id)
                .set("mac", eni_mac(&mac))
                .set("ip", ip)
                .set("prefix", prefix)
                .set("instance", &me)
                .set("configured", u8::from(configured))
                .set("attached", u8::from(attached));
            // The non-secret parameters, for a stop whose parameters no longer parse.
            r.set("param.eni_id", &p.eni_id)
                .set("param.auth_type", p.auth_type.as_str())
                .set("param.profile", &p.profile);
            for (k, v) in [
                ("region", p.region.as_ref().map(|v| v.to_string())),
                (
                    "endpoint_url",
                    p.endpoint_url.as_ref().map(|v| v.to_string()),
                ),
                (
                    "imds_endpoint",
                    p.imds_endpoint.as_ref().map(|v| v.to_string()),
                ),
                (
                    "access_key_id",
                    p.access_key_id.as_ref().map(|v| v.to_string()),
                ),
            ] {
                if let Some(v) = v {
                    r.set(&format!("param.{k}"), v);
                }
            }
            StateFile::for_ctx(ctx).save(&r)
        };
        save(0, false, false)?;
        let mut prefix = None;
        let eni = if eni.attached_to(&me) {
            tracing::info!("{} is already attached to {me}", p.eni_id);
            eni
        } else {
            if let Some((other, att, status, _)) = eni.attachment.clone() {
                if other != me && status != "detaching" {
                    tracing::info!(
                        "detaching {} from {other}{}",
                        p.eni_id,
                        if p.force_detach { " (force)" } else { "" }
                    );
                    let r = api.rt.block_on(within(
                        d,
                        "DetachNetworkInterface",
                        c.detach_network_interface()
                            .attachment_id(&att)
                            .force(p.force_detach)
                            .send(),
                    ))?;
                    if let Err(e) = r {
                        if !is_code(&e, "InvalidAttachmentID.NotFound") {
                            return Err(api_err("DetachNetworkInterface", &e));
                        }
                    }
                }
            }
            // Asked while EC2 detaches: it costs no time there.
            prefix = Some(api.subnet_prefix(&c, d, &eni.subnet)?);
            if eni.attachment.as_ref().is_some_and(|a| a.0 != me) {
                api.wait_for(&c, d, p.eni_id.as_str(), "detach", |e| {
                    e.attachment.is_none() || e.status == "available"
                })?;
            }
            if !eni.attached_to(&me) && eni.attachment.as_ref().is_none_or(|a| a.0 != me) {
                tracing::info!(
                    "attaching {} to {me} at device index {}",
                    p.eni_id,
                    p.device_index
                );
                let r = api.rt.block_on(within(
                    d,
                    "AttachNetworkInterface",
                    c.attach_network_interface()
                        .network_interface_id(p.eni_id.as_str())
                        .instance_id(&me)
                        .device_index(slot.device_index)
                        .send(),
                ))?;
                r.map_err(|e| api_err("AttachNetworkInterface", &e))?;
            }
            api.wait_for(&c, d, p.eni_id.as_str(), "attach", |e| e.attached_to(&me))?
        };
        let prefix = match prefix {
            Some(p) => p,
            None => api.subnet_prefix(&c, d, &eni.subnet)?,
        };

        // The OS side: the interface with the ENI's MAC, and the address on it.
        let nl = Netlink::open()?;
        let link = {
            let mut step = Duration::from_millis(50);
            loop {
                if let Some(l) = link_with_mac(&nl, d, &mac)? {
                    break l;
                }
                if d.remaining() <= step {
                    return Err(OcfError::generic(format!(
                        "{} is attached, but no interface with MAC {} appeared before the timeout",
                        p.eni_id,
                        eni_mac(&mac)
                    )));
                }
                std::thread::sleep(step);
                step = (step * 2).min(Duration::from_millis(500));
            }
        };
        let mut configured = false;
        if !has_ip(&nl, d, link.index, ip)? {
            if !p.configure_address {
                return Err(OcfError::generic(format!(
                    "{ip} is not configured on {} and configure_address is false",
                    link.name
                )));
            }
            let brd = match ip {
                IpAddr::V4(a) if prefix <= 30 => Some(crate::netlink::broadcast(a, prefix, true)),
                _ => None,
            };
            nl.add_addr(
                d,
                &NewAddr {
                    index: link.index,
                    ip,
                    prefix,
                    broadcast: brd,
                    label: None,
                    nodad: false,
                    noprefixroute: false,
                    preferred_lft: None,
                },
            )
            .map_err(|e| {
                OcfError::generic(format!("cannot add {ip}/{prefix} to {}: {e}", link.name))
            })?;
            configured = true;
            tracing::info!("configured {ip}/{prefix} on {}", link.name);
        }
        if !link.admin_up {
            nl.set_up(d, link.index)
                .map_err(|e| OcfError::generic(format!("cannot bring {} up: {e}", link.name)))?;
        }
        save(prefix, configured, true)?;
        tracing::info!("{} attached to {me}, {ip} live on {}", p.eni_id, link.name);
        Ok(())
    }

    fn stop(p: Option<&AwsEniParams>, ctx: &Ctx) -> Result<(), OcfError> {
        let d = &ctx.deadline;
        let state = StateFile::for_ctx(ctx);
        // Local evidence first. Start writes the record before it changes anything, so no
        // record means this node has not started the ENI since boot: nothing of ours to
        // stop, and no API or IMDS call. (If the ENI is attached here anyway, it survived a
        // reboot: the start on another node detaches it from us.)
        let rec = match state.load() {
            Ok(None) => {
                tracing::info!(
                    "no record of a start on this node since boot: nothing of ours to stop"
                );
                return Ok(());
            }
            Ok(Some(r)) => Some(r),
            Err(e) => {
                tracing::warn!("{}; finding the ENI without the record", e.reason);
                None
            }
        };
        let held = rec.as_ref().and_then(Held::from_record);
        let nl = Netlink::open()?;
        let absent_here =
            |h: &Held| -> Result<bool, OcfError> { Ok(link_with_mac(&nl, d, &h.mac)?.is_none()) };
        // A start that completed saw the interface here; its MAC gone means the ENI left
        // this node (an interface with an ENI's MAC exists only while EC2 attaches it here).
        if let Some(h) = held.as_ref().filter(|h| h.attached) {
            if absent_here(h)? {
                tracing::info!(
                    "no interface with MAC {} here: the ENI is no longer attached to this node",
                    eni_mac(&h.mac)
                );
                forget(&state);
                return Ok(());
            }
        }
        // Broken parameters: the valid ones still say where the API is and who we are.
        let lenient = match p {
            Some(_) => None,
            None => ocf::params::lenient_with::<AwsEniParams>(&ctx.env, |name| {
                rec.as_ref()
                    .and_then(|r| r.get(&format!("param.{name}")))
                    .map(str::to_string)
            }),
        };
        let Some(p) = p.or(lenient.as_ref()) else {
            // No usable parameters: only the record can prove anything.
            return match (&rec, &held) {
                (_, Some(h)) if absent_here(h)? => {
                    forget(&state);
                    Ok(())
                }
                (_, Some(h)) => Err(OcfError::generic(format!(
                    "the parameters are broken and the interface with MAC {} is still here",
                    eni_mac(&h.mac)
                ))),
                (Some(_), None) => {
                    tracing::warn!("the record names no interface: nothing to stop");
                    forget(&state);
                    Ok(())
                }
                (None, None) => Err(OcfError::generic(
                    "the state directory is unusable and the parameters name no valid ENI: \
                     cannot tell whether an ENI of this resource is attached here",
                )),
            };
        };
        // The API side: detach only if attached to *this* instance, which the ENI's MAC
        // being here proves as well as IMDS does (so stop works with IMDS down).
        let api_result = (|| -> Result<(), OcfError> {
            let api = Api::new(p, d)?;
            let c = api.ec2(p, d)?;
            let eni = api.describe(&c, d, p.eni_id.as_str())?;
            let mac = mac_bytes(&eni.mac);
            let local = match &mac {
                Some(m) => link_with_mac(&nl, d, m)?.is_some(),
                None => false,
            };
            let me = match api.instance_id(d) {
                Ok(me) => Some(me),
                Err(e) => {
                    tracing::warn!("{}; deciding from the local interfaces", e.reason);
                    None
                }
            };
            let Some((inst, att, status, _)) = eni.attachment.clone() else {
                tracing::info!("{} is not attached anywhere", p.eni_id);
                return Ok(());
            };
            let ours = match &me {
                Some(me) => &inst == me,
                None => local,
            };
            if !ours {
                tracing::info!("{} is attached to {inst}, not here: left alone", p.eni_id);
                return Ok(());
            }
            // An attach still in flight (a start that timed out) cannot be detached yet
            // on EC2: let it finish first.
            let (att, status) = if status == "attaching" {
                let e = api.wait_for(&c, d, p.eni_id.as_str(), "attach in flight", |e| {
                    e.attachment.as_ref().is_none_or(|a| a.2 != "attaching")
                })?;
                match e.attachment {
                    Some(a) if a.0 == inst => (a.1, a.2),
                    _ => return Ok(()),
                }
            } else {
                (att, status)
            };
            if status != "detaching" {
                tracing::info!("detaching {} from {inst}", p.eni_id);
                let r = api.rt.block_on(within(
                    d,
                    "DetachNetworkInterface",
                    c.detach_network_interface().attachment_id(&att).send(),
                ))?;
                if let Err(e) = r {
                    if !is_code(&e, "InvalidAttachmentID.NotFound") {
                        return Err(api_err("DetachNetworkInterface", &e));
                    }
                }
            }
            api.wait_for(&c, d, p.eni_id.as_str(), "detach", |e| {
                e.attachment.as_ref().is_none_or(|a| a.0 != inst)
            })?;
            // And gone from the OS.
            if let Some(mac) = mac {
                let mut step = Duration::from_millis(50);
                while link_with_mac(&nl, d, &mac)?.is_some() {
                    if d.remaining() <= step {
                        return Err(OcfError::generic(format!(
                            "{} is detached in EC2 but its interface is still here",
                            p.eni_id
                        )));
                    }
                    std::thread::sleep(step);
                    step = (step * 2).min(Duration::from_millis(500));
                }
            }
            tracing::info!("{} detached from {inst}", p.eni_id);
            Ok(())
        })();
        match api_result {
            Ok(()) => {
                forget(&state);
                Ok(())
            }
            Err(e)
                if e.kind == ocf::ErrorKind::Configured && e.reason.contains("does not exist") =>
            {
                tracing::warn!("{}; nothing to stop", e.reason);
                forget(&state);
                Ok(())
            }
            Err(e) => match &held {
                // The API is out of reach, but the ENI's interface is provably not here.
                Some(h) if absent_here(h)? => {
                    tracing::warn!(
                        "{}; but no interface with MAC {} is here, so the ENI is not attached to this node",
                        e.reason,
                        eni_mac(&h.mac)
                    );
                    forget(&state);
                    Ok(())
                }
                // The interface is here (or, without a usable record, nothing tells us
                // which one is ours): not verified stopped.
                _ => Err(e),
            },
        }
    }

    fn monitor(p: Option<&AwsEniParams>, ctx: &Ctx) -> Result<Status, OcfError> {
        let d = &ctx.deadline;
        let rec = match StateFile::for_ctx(ctx).load() {
            Ok(r) => r,
            Err(e) => return monitor_without_record(p, ctx, e),
        };
        // No record since boot: not started here (no API or IMDS call).
        let Some(h) = rec.as_ref().and_then(Held::from_record) else {
            return Ok(Status::NotRunning);
        };
        let nl = Netlink::open()?;
        let Some(link) = link_with_mac(&nl, d, &h.mac)? else {
            tracing::info!("no interface with MAC {} here", eni_mac(&h.mac));
            return Ok(Status::NotRunning);
        };
        if !has_ip(&nl, d, link.index, h.ip)? {
            tracing::info!("{}/{} is not on {}", h.ip, h.prefix, link.name);
            return Ok(Status::NotRunning);
        }
        if ctx.check_level() >= 10 {
            if let Some(p) = p {
                let api = Api::new(p, d)?;
                let me = api.instance_id(d)?;
                let c = api.ec2(p, d)?;
                let eni = api.describe(&c, d, p.eni_id.as_str())?;
                if !eni.attached_to(&me) {
                    return Err(OcfError::generic(format!(
                        "the interface is here, but EC2 says {} is {:?}",
                        p.eni_id, eni.attachment
                    )));
                }
            }
        }
        Ok(Status::Success)
    }
}

/// The state directory is unusable: the ENI's identity (its MAC) comes from EC2, and the
/// answer from whether an interface with that MAC, holding the address, is here.
fn monitor_without_record(
    p: Option<&AwsEniParams>,
    ctx: &Ctx,
    why: OcfError,
) -> Result<Status, OcfError> {
    let d = &ctx.deadline;
    tracing::warn!("{}; finding the ENI without the record", why.reason);
    let lenient = match p {
        Some(_) => None,
        None => ocf::params::lenient::<AwsEniParams>(&ctx.env),
    };
    let Some(p) = p.or(lenient.as_ref()) else {
        return Err(OcfError::generic(format!(
            "{}, and the parameters name no valid ENI: cannot tell whether it is attached here",
            why.reason
        )));
    };
    let api = Api::new(p, d)?;
    let c = api.ec2(p, d)?;
    let eni = api.describe(&c, d, p.eni_id.as_str())?;
    let Some(mac) = mac_bytes(&eni.mac) else {
        return Ok(Status::NotRunning);
    };
    let nl = Netlink::open()?;
    let Some(link) = link_with_mac(&nl, d, &mac)? else {
        tracing::info!("no interface with MAC {} here", eni.mac);
        return Ok(Status::NotRunning);
    };
    let ip =
        p.ip.map(|i| IpAddr::V4(i.0))
            .or_else(|| eni.primary_ip.parse().ok());
    match ip {
        Some(ip) if has_ip(&nl, d, link.index, ip)? => Ok(Status::Success),
        _ => {
            tracing::info!("{} is here as {} without its address", p.eni_id, link.name);
            Ok(Status::NotRunning)
        }
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

/// A record left behind after a verified stop is a warning, never a failed stop (the
/// next probe finds the MAC absent and says 7).
fn forget(state: &StateFile) {
    if let Err(e) = state.remove() {
        tracing::warn!("{}; the ENI is verified not attached here", e.reason);
    }
}

fn eni_mac(b: &[u8]) -> String {
    crate::netlink::mac_string(b)
}

/// A DryRun call: `DryRunOperation` means permitted.
fn dry<T, E: ProvideErrorMetadata + std::fmt::Debug>(
    api: &Api,
    d: &Deadline,
    f: impl Future<Output = Result<T, aws_sdk_ec2::error::SdkError<E>>>,
) -> Result<(), OcfError> {
    match api.rt.block_on(within(d, "DryRun", f))? {
        Ok(_) => Ok(()),
        Err(e) if is_code(&e, "DryRunOperation") => Ok(()),
        Err(e) => Err(api_err("DryRun", &e)),
    }
}
