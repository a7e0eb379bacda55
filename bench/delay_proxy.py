"""A TCP forwarder that adds a fixed latency each way: the store "across a network".

netem (tc qdisc) is the right tool, but this machine's kernel has no netem qdisc
("Specified qdisc kind is unknown"), so the benchmark uses this user-space delay line
instead: every chunk read on one side is written on the other ``delay`` seconds later,
without limiting bandwidth (chunks in flight are pipelined, as on a real link).

    python bench/delay_proxy.py LISTEN_PORT TARGET_HOST TARGET_PORT DELAY_MS
"""

import collections
import socket
import sys
import threading
import time


def pump(src, dst, delay):
    line = collections.deque()
    ready = threading.Condition()
    done = []

    def reader():
        try:
            while chunk := src.recv(256 * 1024):
                with ready:
                    line.append((time.monotonic() + delay, chunk))
                    ready.notify()
        except OSError:
            pass
        with ready:
            done.append(True)
            ready.notify()

    threading.Thread(target=reader, daemon=True).start()
    try:
        while True:
            with ready:
                while not line and not done:
                    ready.wait()
                if not line:
                    break
                deadline, chunk = line.popleft()
            pause = deadline - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            dst.sendall(chunk)
    except OSError:
        pass
    finally:
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(listen_port, host, port, delay):
    server = socket.create_server(("127.0.0.1", listen_port), backlog=256)
    while True:
        client, _ = server.accept()
        upstream = socket.create_connection((host, port))
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=pump, args=(client, upstream, delay), daemon=True).start()
        threading.Thread(target=pump, args=(upstream, client, delay), daemon=True).start()


if __name__ == "__main__":
    listen, host, target, delay_ms = sys.argv[1:5]
    serve(int(listen), host, int(target), float(delay_ms) / 1000)
