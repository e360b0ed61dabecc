# A WebSocket peer that is not lune, for the permessage-deflate tests: the
# Python `websockets` library (installed once into target/test-python when
# missing) as an echo server or as a client of our echo server.
#
#   _ws_peer.py server <control port> <variant>   binds port 0, tells it to
#       the test's control listener, then serves one connection: its first
#       message says what was negotiated, then it echoes (variant "bomb":
#       sends 64 MiB of zeros instead and prints the close code it got)
#   _ws_peer.py client <port> <variant>           echoes a set of messages
#       through our server and prints "ok <negotiated>" (variant "bomb":
#       sends 64 MiB of zeros and prints the close code)
#   _ws_peer.py install                           only installs the library
#       (.ci/run does this before the tests, so they need no network)
#
# Variants: "default" (the library's own offer), "small" (9-bit windows and
# no context takeover both ways), "bomb" (default compression).
import asyncio, fcntl, os, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
LIB = os.path.join(ROOT, "target", "test-python")
sys.path.insert(0, LIB)

def ensure_websockets():
    os.makedirs(LIB, exist_ok=True)
    with open(LIB + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            import websockets  # noqa: F401
        except ImportError:
            subprocess.run(
                [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                 "--target", LIB, "websockets==15.0.1"],
                check=True,
            )

ensure_websockets()
if sys.argv[1:] == ["install"]:
    sys.exit(0)

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    ServerPerMessageDeflateFactory,
)

BOMB = b"\0" * (64 << 20)

def messages():
    text = "".join("line %d of a text that compresses well\n" % i for i in range(10000))
    noise = os.urandom(200 * 1024)
    return ["hello", "", bytes(range(256)) * 4, text, noise, text.encode(), "after"]

def factories(variant, client):
    if variant == "small":
        settings = dict(server_max_window_bits=9, client_max_window_bits=9,
                        server_no_context_takeover=True, client_no_context_takeover=True)
    else:
        settings = dict(client_max_window_bits=True) if client else {}
    factory = ClientPerMessageDeflateFactory if client else ServerPerMessageDeflateFactory
    return [factory(**settings)]

def describe(connection):
    extensions = connection.protocol.extensions
    if not extensions:
        return "none"
    ext = extensions[0]
    return "%s local_bits=%s remote_bits=%s local_no_context=%s remote_no_context=%s" % (
        ext.name, ext.local_max_window_bits, ext.remote_max_window_bits,
        ext.local_no_context_takeover, ext.remote_no_context_takeover)

async def run_server(control_port, variant):
    done = asyncio.get_running_loop().create_future()

    async def handler(ws):
        try:
            await ws.send("negotiated " + describe(ws))
            if variant == "bomb":
                await ws.send(BOMB)
                await ws.wait_closed()
                print("closed", ws.close_code)
            else:
                async for message in ws:
                    await ws.send(message)
        finally:
            if not done.done():
                done.set_result(None)

    async with serve(handler, "127.0.0.1", 0, compression=None,
                     extensions=factories(variant, client=False), max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", control_port)
        writer.write(b"%d\n" % port)
        await writer.drain()
        writer.close()
        await asyncio.wait_for(done, 60)

async def run_client(port, variant):
    async with connect("ws://127.0.0.1:%d/" % port, compression=None,
                       extensions=factories(variant, client=True), max_size=None,
                       open_timeout=20) as ws:
        negotiated = describe(ws)
        if not negotiated.startswith("permessage-deflate"):
            raise SystemExit("no compression negotiated: " + negotiated)
        if variant == "bomb":
            await ws.send(BOMB)
            try:
                await asyncio.wait_for(ws.recv(), 30)
                raise SystemExit("the bomb came back")
            except ConnectionClosed as closed:
                print("closed", closed.rcvd.code if closed.rcvd else None)
            return
        for message in messages():
            await ws.send(message)
            echo = await asyncio.wait_for(ws.recv(), 30)
            if echo != message:
                raise SystemExit("echo differs for a %d-byte %s" % (len(message), type(message).__name__))
        # A fragmented compressed message.
        await ws.send(iter(["frag", "mented ", "text"]))
        if await asyncio.wait_for(ws.recv(), 30) != "fragmented text":
            raise SystemExit("a fragmented message did not come back whole")
    print("ok", negotiated)

mode, arg, variant = sys.argv[1], int(sys.argv[2]), sys.argv[3]
asyncio.run(run_server(arg, variant) if mode == "server" else run_client(arg, variant))
