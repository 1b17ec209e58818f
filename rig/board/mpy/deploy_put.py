# Defines _w, which writes the files of one piece of a deploy (rig.deploy.pieces), run on the
# board in the raw REPL after deploy_probe.py (whose _P it uses). z is the piece: a zlib stream
# when c is 1 (inflated here, the window size read from its header), else the files' bytes as
# they are. f lists (i, a, n) in the order of the bytes: n bytes for the file _P[i], appended
# (a is 1) when the file began in an earlier piece, else written from the start. Reading 512
# bytes at a time keeps the board's RAM to the piece, the window and this buffer; the collection
# first gives the window one free block where the heap is small.
import io, gc
def _w(z, c, f):
    gc.collect()
    s = io.BytesIO(z)
    if c:
        import deflate
        s = deflate.DeflateIO(s, deflate.ZLIB)
    b = bytearray(512)
    m = memoryview(b)
    for i, a, n in f:
        o = open(_P[i], 'ab' if a else 'wb')
        while n:
            k = s.readinto(m[:min(n, 512)])
            if not k:
                o.close()
                raise OSError('piece for ' + _P[i] + ' ended early')
            o.write(m[:k])
            n -= k
        o.close()
