# dnsd and lb in an image that holds their static binaries and nothing
# else. There is no builder stage (it would need a Go image from a
# registry): build the binaries first, then the image.
#
#   CGO_ENABLED=0 go build -o build/dnsd ./dnsd
#   CGO_ENABLED=0 go build -o build/lb ./lb
#   docker build -t swarmdns .
#
# Run dnsd with a Corefile and task files mounted:
#
#   docker run -v $PWD/conf:/etc/dnsd swarmdns
#
# or lb in its place:
#
#   docker run --entrypoint /lb -v $PWD/conf:/etc/dnsd swarmdns -conf /etc/dnsd/lb.conf
FROM scratch
COPY build/dnsd /dnsd
COPY build/lb /lb
# DNS, and gossip on Swarm's port
EXPOSE 53/udp 53/tcp 7946/udp 7946/tcp
ENTRYPOINT ["/dnsd"]
CMD ["-conf", "/etc/dnsd/Corefile"]
