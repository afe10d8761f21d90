# rustha: build, install, test, bench.
PREFIX     ?= /usr
LIBEXECDIR ?= $(PREFIX)/libexec
SBINDIR    ?= $(PREFIX)/sbin
OCF_ROOT   ?= $(PREFIX)/lib/ocf
DOCDIR     ?= $(PREFIX)/share/doc/rustha
MANDIR     ?= $(PREFIX)/share/man
PROVIDER   ?= rustha
DESTDIR    ?=
CARGO      ?= cargo
CARGO_TARGET_DIR ?= $(CURDIR)/target
export CARGO_TARGET_DIR

# Release builds link glibc statically: no dynamic loader work on every action (a
# monitor costs ~0.56 ms CPU instead of ~0.86) and no libc.so pages in the responder's
# RSS. An explicit --target keeps the flag off build scripts and proc-macros.
# And not position-independent (PIE=0): with the AWS SDK linked in, a static-pie binary
# applies ~26,000 relocations at every start, copy-on-writing ~400 KB of RELRO data:
# an IPaddr2 monitor went from 1.06 to 1.60 ms CPU (112 -> 214 page faults). The cost:
# no ASLR for the executable image itself (stack, heap and mmaps are still randomised).
# `make PIE=1 ...` builds static-pie instead.
# The AWS SDK resolves endpoint names with getaddrinfo, which in a static glibc binary
# loads the NSS modules of the same glibc at run time: fine when built on the node
# (`make install`); packages must build on the target distribution.
TRIPLE      ?= $(shell rustc -vV | sed -n 's/^host: //p')
PIE         ?= 0
RELEASE_RUSTFLAGS ?= -C target-feature=+crt-static $(if $(filter 0,$(PIE)),-C relocation-model=static)
RELEASE_BIN := $(CARGO_TARGET_DIR)/$(TRIPLE)/release/rustha
DEV_BIN     := $(CARGO_TARGET_DIR)/debug/rustha
INSTALLED   := $(LIBEXECDIR)/rustha/rustha
AGENT_DIR   := $(OCF_ROOT)/resource.d/$(PROVIDER)
# One version for the crate, the agents' meta-data and the packages (a test checks
# debian/changelog and the spec against it).
VERSION     := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' Cargo.toml | head -n1)
# Packages and the source tarball are made here.
PKGDIR      ?= $(CURDIR)/build
DIST        := $(PKGDIR)/rustha-$(VERSION).tar.gz
# Both package builds unpack the tarball at this one path, so the second build (and the
# next run) finds cargo's release artefacts up to date.
PKGSRC      := $(PKGDIR)/src
# But cargo judges "up to date" by file times, and the tarball's are the commit's: unpacked
# over artefacts built later from another commit, the sources look older than those and the
# package would ship the other commit's binary (and its `--version`). So PKGSRC remembers
# the commit it holds: the same commit is unpacked with its own times (same bytes, the
# artefacts are its own), any other with fresh ones (rustha's crates rebuild, the
# dependencies' artefacts stay). Expanded when a recipe runs, after `dist` made the tarball.
DIST_COMMIT     = $(shell gzip -dc $(DIST) | git get-tar-commit-id)
SAME_COMMIT     = $(filter $(DIST_COMMIT),$(shell cat $(PKGSRC)/.commit 2>/dev/null))
REMEMBER_COMMIT = echo $(DIST_COMMIT) >$(PKGSRC)/.commit

.PHONY: all build install uninstall test lint meta bench drill clean smoke dist deb rpm

all: build

# The package builders' environment is left out: dpkg-buildpackage sets the C flags and
# SOURCE_DATE_EPOCH, rpmbuild sets PKG_CONFIG_PATH, and aws-lc-sys reruns its C build when
# any of them changes, and with it every crate above it (~15 min). aws-lc is built with
# its own flags and no system library; the binary holds no time stamp. So `make build`,
# `make deb` and `make rpm` share one set of release artefacts.
BUILD_ENV := env -u CFLAGS -u CXXFLAGS -u CPPFLAGS -u LDFLAGS -u ASFLAGS \
  -u PKG_CONFIG_PATH -u SOURCE_DATE_EPOCH
build:
	$(BUILD_ENV) RUSTFLAGS="$(RELEASE_RUSTFLAGS)" \
	  $(CARGO) build --release --locked --target $(TRIPLE)

# The binary lives in libexec; resource.d/rustha/ holds only one symlink per agent,
# named by the binary itself (`rustha list`), so the list can never drift.
install: build
	install -D -m 0755 $(RELEASE_BIN) $(DESTDIR)$(INSTALLED)
	install -d -m 0755 $(DESTDIR)$(SBINDIR)
	ln -sfn $(INSTALLED) $(DESTDIR)$(SBINDIR)/rustha
	install -d -m 0755 $(DESTDIR)$(AGENT_DIR)
	for a in $$($(RELEASE_BIN) list); do \
	  ln -sfn $(INSTALLED) $(DESTDIR)$(AGENT_DIR)/$$a; \
	done
	install -d -m 0755 $(DESTDIR)$(DOCDIR) $(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(MANDIR)/man8
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/
	for a in $$($(RELEASE_BIN) list); do \
	  install -m 0644 meta/$$a.md meta/$$a.xml $(DESTDIR)$(DOCDIR)/ && \
	  install -m 0644 meta/man/ocf_$(PROVIDER)_$$a.7 $(DESTDIR)$(MANDIR)/man7/ || exit 1; \
	done
	install -m 0644 meta/man/rustha.8 $(DESTDIR)$(MANDIR)/man8/

uninstall:
	for l in $(DESTDIR)$(AGENT_DIR)/*; do \
	  [ -L "$$l" ] && [ "$$(readlink "$$l")" = "$(INSTALLED)" ] && rm -f "$$l"; \
	done; true
	-rmdir $(DESTDIR)$(AGENT_DIR) 2>/dev/null
	[ -L $(DESTDIR)$(SBINDIR)/rustha ] && [ "$$(readlink $(DESTDIR)$(SBINDIR)/rustha)" = "$(INSTALLED)" ] \
	  && rm -f $(DESTDIR)$(SBINDIR)/rustha; true
	rm -f $(DESTDIR)$(INSTALLED)
	-rmdir $(DESTDIR)$(LIBEXECDIR)/rustha 2>/dev/null
	rm -rf $(DESTDIR)$(DOCDIR)
	rm -f $(DESTDIR)$(MANDIR)/man7/ocf_$(PROVIDER)_*.7 $(DESTDIR)$(MANDIR)/man8/rustha.8

# Everything, against the real tools (root, network namespaces, Pacemaker: see .ci/run).
# Note: the tests point $(AGENT_DIR)/<agent> at the binary under test; run
# `make install` again afterwards if this machine had rustha installed.
test:
	$(CARGO) fmt --all -- --check
	$(CARGO) test --workspace --locked

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

# Regenerate the committed meta-data and docs from the parameter declarations.
meta:
	$(CARGO) build --locked
	$(DEV_BIN) meta meta README.md

# Side by side with ocf:heartbeat:azure-lb in one run; release build.
# The agent is called through a link named like it, as Pacemaker does.
bench: build
	mkdir -p $(CARGO_TARGET_DIR)/bench
	ln -sfn $(RELEASE_BIN) $(CARGO_TARGET_DIR)/bench/azure-lb
	ln -sfn $(RELEASE_BIN) $(CARGO_TARGET_DIR)/bench/IPaddr2
	python3 tests/bench/azure_lb_bench.py --rustha $(CARGO_TARGET_DIR)/bench/azure-lb \
	  --json $(CARGO_TARGET_DIR)/bench-results.json
	python3 tests/bench/ipaddr2_bench.py --rustha $(CARGO_TARGET_DIR)/bench/IPaddr2 \
	  --json $(CARGO_TARGET_DIR)/bench-ipaddr2.json
	ln -sfn $(RELEASE_BIN) $(CARGO_TARGET_DIR)/bench/aws-eni
	python3 tests/bench/aws_eni_bench.py --rustha $(CARGO_TARGET_DIR)/bench/aws-eni \
	  --json $(CARGO_TARGET_DIR)/bench-aws-eni.json
	for a in nginx mysql lighttpd; do ln -sfn $(RELEASE_BIN) $(CARGO_TARGET_DIR)/bench/$$a; done
	python3 tests/bench/services_bench.py --rustha-dir $(CARGO_TARGET_DIR)/bench \
	  --json $(CARGO_TARGET_DIR)/bench-services.json
	ln -sfn $(RELEASE_BIN) $(CARGO_TARGET_DIR)/bench/Filesystem
	python3 tests/bench/filesystem_bench.py --rustha $(CARGO_TARGET_DIR)/bench/Filesystem \
	  --json $(CARGO_TARGET_DIR)/bench-filesystem.json

# Failure-injection drills on a real 2-node Pacemaker + Corosync cluster in namespaces,
# rustha's agents and the heartbeat ones side by side; report in drill-results/<time>/.
# Empty DRILLS / DRILL_PROVIDERS: the stack's default set and providers
# (`python3 drill/drill.py stacks` lists them). The plan is checked before the lab is up.
DRILL_NODES     ?= 2
DRILL_STACK     ?= azure
DRILL_PROVIDERS ?=
DRILLS          ?=
DRILL_ARGS = --stack $(DRILL_STACK) $(if $(DRILL_PROVIDERS),--providers $(DRILL_PROVIDERS)) $(DRILLS)
drill:
	python3 drill/drill.py plan --nodes $(DRILL_NODES) $(DRILL_ARGS)
	$(MAKE) build
	python3 drill/drill.py up --nodes $(DRILL_NODES) --rustha $(RELEASE_BIN) \
	  $(if $(filter aws,$(DRILL_STACK)),--aws)
	python3 drill/drill.py run $(DRILL_ARGS); \
	  rc=$$?; python3 drill/drill.py down; exit $$rc

clean:
	$(CARGO) clean
	rm -rf $(PKGDIR)

# What a package build can check without root: the release binary runs, knows its
# agents, and each answers meta-data.
smoke: build
	$(RELEASE_BIN) --version
	for a in $$($(RELEASE_BIN) list); do \
	  OCF_ROOT=/nonexistent $(RELEASE_BIN) $$a meta-data >/dev/null || exit 1; \
	done

# The source tarball: `git archive` of HEAD (so the same commit gives the same bytes:
# file times are the commit's, gzip -n stores no name or time). COMMIT in it names the
# commit (export-subst) for `rustha --version`. Not vendored: crates come from
# crates.io at build time, pinned with checksums by Cargo.lock (`--locked`).
dist:
	@git diff --quiet HEAD -- || echo "dist: uncommitted changes are not in $(DIST)" >&2
	mkdir -p $(PKGDIR)
	git archive --format=tar --prefix=rustha-$(VERSION)/ HEAD | gzip -n -9 >$(DIST).tmp
	mv $(DIST).tmp $(DIST)
	sha256sum $(DIST)

# The .deb, with dpkg-buildpackage and debhelper from the tarball plus its
# packaging/debian. -d: the Rust toolchain comes from rustup, not a Debian package.
deb: dist
	rm -rf $(PKGSRC) && mkdir -p $(PKGSRC)
	tar -xzf $(DIST) -C $(PKGSRC) $(if $(SAME_COMMIT),,--touch)
	$(REMEMBER_COMMIT)
	cp -a $(PKGSRC)/rustha-$(VERSION)/packaging/debian $(PKGSRC)/rustha-$(VERSION)/debian
	cd $(PKGSRC)/rustha-$(VERSION) && dpkg-buildpackage -b -us -uc -d
	mv $(PKGSRC)/rustha_$(VERSION)-*.deb $(PKGSRC)/rustha_$(VERSION)-*.buildinfo \
	  $(PKGSRC)/rustha_$(VERSION)-*.changes $(PKGDIR)/
	ls -l $(PKGDIR)/rustha_$(VERSION)-*.deb

# The .rpm, with rpmbuild from the tarball (Debian's rpm package can build it too;
# --nodeps: there is no RPM database of build dependencies there).
rpm: dist
	rm -rf $(PKGDIR)/rpm $(PKGSRC) && mkdir -p $(PKGDIR)/rpm/SOURCES $(PKGSRC)
	cp $(DIST) $(PKGDIR)/rpm/SOURCES/
	rpmbuild -bb --nodeps --define "_topdir $(PKGDIR)/rpm" --define "_builddir $(PKGSRC)" \
	  $(if $(SAME_COMMIT),,--define "rustha_fresh_times 1") packaging/rpm/rustha.spec
	$(REMEMBER_COMMIT)
	mv $(PKGDIR)/rpm/RPMS/*/rustha-$(VERSION)-*.rpm $(PKGDIR)/
	ls -l $(PKGDIR)/rustha-$(VERSION)-*.rpm
