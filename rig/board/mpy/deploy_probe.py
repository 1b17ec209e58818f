# The deploy's first round trip, run on the board in the raw REPL (rig.deploy.sync). The host
# puts two lines in front of it: _D, the directories to make, and _P, the board path of every
# planned file. It prints one line "inflate free": inflate is 1 when the board has the deflate
# module (MicroPython 1.21+) and can take compressed files, free the bytes of heap free after a
# collection (the host sizes the pieces to it), -1 if the port does not say; then a line per file
# in _P, its sha256, or - for a missing file or a board without hashlib. Line by line, so that
# a board with little RAM never holds all the answers at once. _P and _h stay defined: the host names written
# files by their index in _P and has them hashed again in its last round trip.
import os
try:
    import hashlib, binascii
except ImportError:
    hashlib = None
try:
    import deflate
    _Z = int(hasattr(deflate, 'DeflateIO'))
except ImportError:
    _Z = 0
for d in _D:
    try:
        os.mkdir(d)
    except OSError:
        pass
def _h(p):
    if hashlib is None:
        return None
    try:
        f = open(p, 'rb')
    except OSError:
        return None
    d = hashlib.sha256()
    b = bytearray(512)
    m = memoryview(b)
    while True:
        n = f.readinto(b)
        if not n:
            break
        d.update(m[:n])
    f.close()
    return binascii.hexlify(d.digest()).decode()
import gc
gc.collect()
try:
    print(_Z, gc.mem_free())
except AttributeError:
    print(_Z, -1)
for p in _P:
    print(_h(p) or '-')
