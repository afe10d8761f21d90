#!/usr/bin/env python3
"""A faithful-enough EC2 + IMDSv2 for the aws-eni tests, in front of moto's server mode.

    ec2sim.py --moto http://127.0.0.1:PORT --ns NS_A --ns NS_B [--attach-secs 1] [--detach-secs 1]

* Seeds moto (boto3, from the moto install): a VPC, a subnet in us-east-1a, one instance
  per --ns (in that order), spare ENIs with 10.0.1.100 and 10.0.1.101 in the subnet, and an ENI
  in another AZ. Prints one line `ready key=value ...` on stdout, then serves until killed.
* In every instance namespace, on that namespace's own loopback:
  - 127.0.0.1:5000  EC2 API, forwarded to moto (which runs on the host's loopback), with
    what moto lacks: `attaching` / `detaching` states lasting --attach-secs / --detach-secs,
    `InvalidNetworkInterface.InUse` for an ENI that is attached (or moving), device-index
    conflicts, and injected throttling / 5xx / permission denials / bad keys;
  - 127.0.0.1:5001  IMDSv2 of that instance (token PUT with TTL, instance-id, region, AZ),
    with failure modes (token refused, slow, down).
  So each simulated instance reaches "its" EC2 and IMDS exactly as a real one does.
* When an attach completes, an interface `eth<device-index>` with the ENI's MAC appears in
  the instance's namespace (a veth pair, both ends up); when a detach completes it goes.
* Control, on the host's loopback (--ctl port, printed): GET /_sim?key=value...
  throttle=N, fail5xx=N, deny=Action[,Action], badkey=AKID, attach_secs=S, detach_secs=S,
  imds=<instance-id>:<ok|refuse-token|slow|down>, region=<instance-id>:<what IMDS says>; GET /_sim/calls (JSON list of
  [action, access key id, dry-run, HTTP status]); GET /_sim/count (`ec2=N imds=M`: EC2
  calls and IMDS requests so far, all instances).
Only loopback and the test's own namespaces are used.
"""
import argparse
import ctypes
import http.server
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import parse_qs, urlparse

CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)
NS_XML = "http://ec2.amazonaws.com/doc/2016-11-15/"


def listen_in_netns(ns, port):
    """A listening TCP socket on 127.0.0.1:port inside the named network namespace."""
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {ns}")
        try:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            s.listen(64)
        finally:
            if libc.setns(own, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(own)
        os.close(target)
    return s


def serve(sock, handler, **attrs):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler, bind_and_activate=False)
    srv.socket.close()
    srv.socket = sock
    srv.server_address = sock.getsockname()
    srv.daemon_threads = True
    for k, v in attrs.items():
        setattr(srv, k, v)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def ec2_error(code, message, status=400):
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}</Code>'
            f'<Message>{message}</Message></Error></Errors><RequestID>sim</RequestID></Response>')
    return status, body


class Sim:
    def __init__(self, moto, attach_secs, detach_secs):
        self.moto = moto.rstrip("/")
        self.attach_secs = attach_secs
        self.detach_secs = detach_secs
        self.lock = threading.RLock()
        self.throttle = 0
        self.fail5xx = 0
        self.deny = set()
        self.badkeys = set()
        self.imds_mode = {}
        self.instances = {}  # instance id -> (ns, region, az)
        self.pending = {}  # eni -> {"state", "until", ...}
        self.calls = []
        self.imds_requests = 0
        self.auth = None  # an Authorization header to reuse for our own moto queries

    # -- moto ---------------------------------------------------------------------------
    def moto_post(self, body, auth):
        req = urllib.request.Request(self.moto + "/", data=body.encode(), method="POST")
        req.add_header("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
        req.add_header("Authorization", auth)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def describe(self, auth, **filters):
        q = "Action=DescribeNetworkInterfaces&Version=2016-11-15"
        for i, (k, v) in enumerate(filters.items(), 1):
            q += f"&Filter.{i}.Name={k}&Filter.{i}.Value.1={v}"
        _, xml = self.moto_post(q, auth)
        return items(xml)

    # -- interfaces in the instance namespaces ------------------------------------------
    def plug(self, ns, idx, mac):
        name = f"eth{idx}"
        subprocess.run(["ip", "-n", ns, "link", "add", name, "address", mac, "type", "veth",
                        "peer", "name", f"p{name}"], check=False)
        subprocess.run(["ip", "-n", ns, "link", "set", f"p{name}", "up"], check=False)
        subprocess.run(["ip", "-n", ns, "link", "set", name, "up"], check=False)

    def unplug(self, ns, idx):
        subprocess.run(["ip", "-n", ns, "link", "del", f"eth{idx}"], check=False,
                       stderr=subprocess.DEVNULL)

    # -- EC2 actions --------------------------------------------------------------------
    def handle(self, body, auth):
        status, text = self._handle(body, auth)
        with self.lock:
            self.calls[-1].append(status)
        return status, text

    def _handle(self, body, auth):
        form = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
        action = form.get("Action", "")
        m = re.search(r"Credential=([^/]+)/", auth or "")
        key = m.group(1) if m else ""
        dry = form.get("DryRun", "").lower() == "true"
        with self.lock:
            self.calls.append([action, key, dry])
            if key in self.badkeys:
                return ec2_error("AuthFailure", "AWS was not able to validate the provided access credentials", 401)
            if self.throttle > 0:
                self.throttle -= 1
                return ec2_error("RequestLimitExceeded", "Request limit exceeded.", 503)
            if self.fail5xx > 0:
                self.fail5xx -= 1
                return ec2_error("InternalError", "An internal error has occurred", 500)
            if action in self.deny:
                return ec2_error("UnauthorizedOperation",
                                 f"You are not authorized to perform this operation. ({action})", 403)
        if dry:
            return self.moto_post(body, auth)
        if action == "AttachNetworkInterface":
            return self.attach(form, body, auth)
        if action == "DetachNetworkInterface":
            return self.detach(form, body, auth)
        status, xml = self.moto_post(body, auth)
        if action == "DescribeNetworkInterfaces" and status == 200:
            xml = self.rewrite(xml)
        return status, xml

    def attach(self, form, body, auth):
        eni, inst, idx = form.get("NetworkInterfaceId"), form.get("InstanceId"), form.get("DeviceIndex")
        with self.lock:
            cur = self.describe(auth, **{"network-interface-id": eni})
            if cur and (eni in self.pending or cur[0].get("attachment.status")):
                return ec2_error("InvalidNetworkInterface.InUse", f"Interface: [{eni}] in use.")
            for it in self.describe(auth, **{"attachment.instance-id": inst}):
                if it.get("attachment.deviceIndex") == idx:
                    return ec2_error("InvalidParameterValue",
                                     f"Instance '{inst}' already has an interface attached at device index '{idx}'.")
            status, xml = self.moto_post(body, auth)
            if status != 200:
                return status, xml
            mac = cur[0].get("macAddress") if cur else None
            until = time.monotonic() + self.attach_secs
            self.pending[eni] = {"state": "attaching", "until": until}
        ns = self.instances.get(inst, (None,))[0]

        def done():
            time.sleep(max(0.0, until - time.monotonic()))
            if ns and mac:
                self.plug(ns, idx, mac)
            with self.lock:
                if self.pending.get(eni, {}).get("until") == until:
                    del self.pending[eni]
        threading.Thread(target=done, daemon=True).start()
        return status, xml

    def detach(self, form, body, auth):
        att = form.get("AttachmentId")
        with self.lock:
            cur = self.describe(auth, **{"attachment.attachment-id": att})
            if not cur or cur[0].get("attachment.deviceIndex") == "0":
                return self.moto_post(body, auth)  # moto's NotFound / OperationNotPermitted
            it = cur[0]
            eni = it["networkInterfaceId"]
            if self.pending.get(eni, {}).get("state") == "detaching":
                return ec2_error("IncorrectState", f"Interface {eni} is already detaching.")
            until = time.monotonic() + self.detach_secs
            self.pending[eni] = {"state": "detaching", "until": until}
        ns = self.instances.get(it.get("attachment.instanceId"), (None,))[0]
        idx = it.get("attachment.deviceIndex")

        def done():
            time.sleep(max(0.0, until - time.monotonic()))
            # EC2's detach and the end of "detaching" are one step (an attach that sees
            # the ENI available must not find it still pending); the interface leaves
            # the instance's OS after that, as a hot-unplug does.
            with self.lock:
                self.moto_post(body, auth)
                if self.pending.get(eni, {}).get("until") == until:
                    del self.pending[eni]
            if ns:
                self.unplug(ns, idx)
        threading.Thread(target=done, daemon=True).start()
        return 200, ('<?xml version="1.0" encoding="UTF-8"?>\n<DetachNetworkInterfaceResponse '
                     f'xmlns="{NS_XML}"><requestId>sim</requestId><return>true</return>'
                     '</DetachNetworkInterfaceResponse>')

    def rewrite(self, xml):
        with self.lock:
            pending = {e: p["state"] for e, p in self.pending.items()}
        if not pending:
            return xml
        out, pos = [], 0
        for start, end in top_items(xml):
            item = xml[start:end]
            m = re.search(r"<networkInterfaceId>([^<]+)</networkInterfaceId>", item)
            state = pending.get(m.group(1)) if m else None
            if state:
                item = re.sub(r"(<attachment>.*?<status>)attached(</status>)",
                              lambda mm: mm.group(1) + state + mm.group(2), item, count=1, flags=re.S)
            out.append(xml[pos:start])
            out.append(item)
            pos = end
        out.append(xml[pos:])
        return "".join(out)


def top_items(xml):
    """(start, end) of each top-level <item> of the networkInterfaceSet."""
    s = xml.find("<networkInterfaceSet>")
    if s < 0:
        return []
    res, depth, start = [], 0, None
    for m in re.finditer(r"<item>|</item>|</networkInterfaceSet>", xml[s:]):
        tag = m.group(0)
        if tag == "</networkInterfaceSet>" and depth == 0:
            break
        if tag == "<item>":
            if depth == 0:
                start = s + m.start()
            depth += 1
        elif tag == "</item>":
            depth -= 1
            if depth == 0:
                res.append((start, s + m.end()))
    return res


def items(xml):
    """Flat dicts of each ENI: top-level fields and attachment.* fields."""
    res = []
    for a, b in top_items(xml):
        it = xml[a:b]
        d = {}
        att = re.search(r"<attachment>(.*?)</attachment>", it, re.S)
        if att:
            for k, v in re.findall(r"<(\w+)>([^<]*)</\1>", att.group(1)):
                d["attachment." + k] = v
            it = it.replace(att.group(0), "")
        for k in ("networkInterfaceId", "macAddress", "privateIpAddress", "status", "availabilityZone", "subnetId"):
            m = re.search(rf"<{k}>([^<]*)</{k}>", it)
            if m:
                d[k] = m.group(1)
        res.append(d)
    return res


def ec2_handler(sim):
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(n).decode()
            status, text = sim.handle(body, self.headers.get("Authorization", ""))
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
    return H


def imds_handler(sim, inst):
    tokens = {}

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def reply(self, status, text=""):
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            if status == 200 and self.command == "PUT":
                self.send_header("X-aws-ec2-metadata-token-ttl-seconds",
                                 self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", ""))
            self.end_headers()
            self.wfile.write(data)

        def mode(self):
            with sim.lock:
                sim.imds_requests += 1
            m = sim.imds_mode.get(inst, "ok")
            if m == "down":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return None
            if m == "slow":
                time.sleep(5)
            return m

        def do_PUT(self):
            m = self.mode()
            if m is None:
                return
            if self.path != "/latest/api/token":
                return self.reply(404)
            if m == "refuse-token":
                return self.reply(403, "Forbidden")
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            if not ttl or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return self.reply(400, "Bad Request")
            t = secrets.token_urlsafe(24)
            tokens[t] = time.monotonic() + int(ttl)
            self.reply(200, t)

        def do_GET(self):
            m = self.mode()
            if m is None:
                return
            if self.path == "/latest/api/token":
                return self.reply(405)
            t = self.headers.get("X-aws-ec2-metadata-token", "")
            if tokens.get(t, 0) < time.monotonic():
                return self.reply(401, "Unauthorized")
            ns, region, az = sim.instances[inst]
            data = {
                "/latest/meta-data/instance-id": inst,
                "/latest/meta-data/placement/region": region,
                "/latest/meta-data/placement/availability-zone": az,
            }
            if self.path in data:
                return self.reply(200, data[self.path])
            self.reply(404, "Not Found")
    return H


def ctl_handler(sim):
    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            u = urlparse(self.path)
            if u.path == "/_sim/calls":
                with sim.lock:
                    data = json.dumps(sim.calls).encode()
            elif u.path == "/_sim/count":
                with sim.lock:
                    data = f"ec2={len(sim.calls)} imds={sim.imds_requests}".encode()
            else:
                q = {k: v[0] for k, v in parse_qs(u.query, keep_blank_values=True).items()}
                with sim.lock:
                    if "throttle" in q:
                        sim.throttle = int(q["throttle"])
                    if "fail5xx" in q:
                        sim.fail5xx = int(q["fail5xx"])
                    if "deny" in q:
                        sim.deny = set(filter(None, q["deny"].split(",")))
                    if "badkey" in q:
                        sim.badkeys = set(filter(None, q["badkey"].split(",")))
                    if "attach_secs" in q:
                        sim.attach_secs = float(q["attach_secs"])
                    if "detach_secs" in q:
                        sim.detach_secs = float(q["detach_secs"])
                    if "imds" in q:
                        inst, mode = q["imds"].rsplit(":", 1)
                        sim.imds_mode[inst] = mode
                    if "region" in q:
                        inst, region = q["region"].split(":", 1)
                        ns, _, az = sim.instances[inst]
                        sim.instances[inst] = (ns, region, az)
                data = b"ok"
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
    return H


def seed(moto, namespaces):
    import boto3  # comes with moto
    ec2 = boto3.client("ec2", endpoint_url=moto, region_name="us-east-1",
                       aws_access_key_id="AKIDSEED", aws_secret_access_key="seed-secret")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    sub = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    sub_b = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.2.0/24", AvailabilityZone="us-east-1b")["Subnet"]["SubnetId"]
    insts = []
    for _ in namespaces:
        r = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=sub)
        insts.append(r["Instances"][0]["InstanceId"])
    eni = ec2.create_network_interface(SubnetId=sub, PrivateIpAddress="10.0.1.100")["NetworkInterface"]
    second = ec2.create_network_interface(SubnetId=sub, PrivateIpAddress="10.0.1.101")["NetworkInterface"]
    other = ec2.create_network_interface(SubnetId=sub_b, PrivateIpAddress="10.0.2.100")["NetworkInterface"]
    return {
        "vpc": vpc, "subnet": sub, "instances": insts,
        "eni": eni["NetworkInterfaceId"], "mac": eni["MacAddress"], "ip": "10.0.1.100",
        "eni_second": second["NetworkInterfaceId"],
        "eni_other_az": other["NetworkInterfaceId"],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moto", required=True)
    ap.add_argument("--ns", action="append", required=True)
    ap.add_argument("--ctl", type=int, default=0)
    ap.add_argument("--attach-secs", type=float, default=1.0)
    ap.add_argument("--detach-secs", type=float, default=1.0)
    a = ap.parse_args()
    ids = seed(a.moto, a.ns)
    sim = Sim(a.moto, a.attach_secs, a.detach_secs)
    for ns, inst in zip(a.ns, ids["instances"]):
        sim.instances[inst] = (ns, "us-east-1", "us-east-1a")
        serve(listen_in_netns(ns, 5000), ec2_handler(sim))
        serve(listen_in_netns(ns, 5001), imds_handler(sim, inst))
    ctl = socket.socket()
    ctl.bind(("127.0.0.1", a.ctl))
    ctl.listen(16)
    serve(ctl, ctl_handler(sim))
    fields = dict(ids, ctl=ctl.getsockname()[1])
    fields["instances"] = ",".join(ids["instances"])
    print("ready " + " ".join(f"{k}={v}" for k, v in fields.items()), flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
