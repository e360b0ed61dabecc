# A peer that is not lune, for the TLS tests: an SMTP-style STARTTLS server
# or client, and a mutual-TLS server or client. PEMs come from the fixture
# variables (LUNE_TEST_*). A server binds port 0 and tells its port to the
# test's control listener (argv[2]) before it accepts.
import os, socket, ssl, sys, tempfile

def pem_file(name):
    f = tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False)
    f.write(os.environ[name])
    f.close()
    return f.name

def server_context(require_client):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pem_file("LUNE_TEST_TLS_CERT"), pem_file("LUNE_TEST_TLS_KEY"))
    if require_client:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(os.environ["LUNE_TEST_CA_FILE"])
    return ctx

def client_context(with_cert):
    ctx = ssl.create_default_context(cafile=os.environ["LUNE_TEST_CA_FILE"])
    if with_cert:
        ctx.load_cert_chain(pem_file("LUNE_TEST_CLIENT_CERT"), pem_file("LUNE_TEST_CLIENT_KEY"))
    return ctx

def listen_and_tell(control_port):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(20)
    control = socket.create_connection(("127.0.0.1", control_port), timeout=20)
    control.sendall(b"%d\n" % listener.getsockname()[1])
    control.close()
    conn, _ = listener.accept()
    conn.settimeout(20)
    return conn

def read_line(sock):
    line = b""
    while not line.endswith(b"\r\n"):
        byte = sock.recv(1)
        if not byte:
            raise EOFError("peer closed during: %r" % line)
        line += byte
    return line.decode()

def expect(line, prefix):
    if not line.startswith(prefix):
        raise ValueError("expected %r, got %r" % (prefix, line))

mode = sys.argv[1]
if mode == "smtp-server":
    conn = listen_and_tell(int(sys.argv[2]))
    conn.sendall(b"220 ready\r\n")
    expect(read_line(conn), "EHLO ")
    conn.sendall(b"250 STARTTLS\r\n")
    expect(read_line(conn), "STARTTLS")
    conn.sendall(b"220 go ahead\r\n")
    tls = server_context(False).wrap_socket(conn, server_side=True)
    line = read_line(tls)
    tls.sendall(("echo: " + line).encode())
    tls.close()
    print("served")
elif mode == "smtp-client":
    conn = socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=20)
    expect(read_line(conn), "220")
    conn.sendall(b"EHLO python\r\n")
    expect(read_line(conn), "250")
    conn.sendall(b"STARTTLS\r\n")
    expect(read_line(conn), "220")
    tls = client_context(False).wrap_socket(conn, server_hostname="localhost")
    tls.sendall(b"hello over tls\r\n")
    sys.stdout.write(read_line(tls))
    tls.close()
elif mode == "mtls-server":
    conn = listen_and_tell(int(sys.argv[2]))
    tls = server_context(True).wrap_socket(conn, server_side=True)
    subject = dict(x[0] for x in tls.getpeercert()["subject"])
    tls.sendall(("client " + subject.get("commonName", "?") + "\r\n").encode())
    read_line(tls)
    tls.close()
    print("served")
elif mode == "mtls-client":
    conn = socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=20)
    tls = client_context(True).wrap_socket(conn, server_hostname="localhost")
    tls.sendall(b"hello\r\n")
    sys.stdout.write(read_line(tls))
    tls.close()
else:
    raise SystemExit("unknown mode " + mode)
