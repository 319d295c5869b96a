# Stand-in for prom/prometheus, used only where Docker Hub cannot be reached (see ../stack_images.py).
# Debian's prometheus package (2.x) on the debootstrapped Python stand-in, laid out like the upstream image:
# /bin/prometheus and /bin/promtool, data in /prometheus, running as nobody, and wget for the compose
# healthcheck (upstream has busybox wget). Built with --network host.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus wget \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && mkdir -p /prometheus /etc/prometheus \
 && chown nobody:nogroup /prometheus /etc/prometheus \
 && /bin/prometheus --version && /bin/promtool --version
USER nobody
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
