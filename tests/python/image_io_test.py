"""Issue 16: docker-py's commit, save, load, history and df against moor (tests/image_io.rs).

argv[1]: a busybox rootfs tarball to import.
"""
import sys

import docker

client = docker.from_env()
with open(sys.argv[1], "rb") as f:
    client.api.import_image_from_data(f.read(), repository="pybase", tag="1")
ctr = client.containers.run("pybase:1", ["/bin/sh", "-c", "echo from-py > /f"], detach=True)
assert ctr.wait()["StatusCode"] == 0
img = ctr.commit(repository="pyc", tag="1", changes=['CMD ["/bin/cat", "/f"]'], message="m")
ctr.remove()
data = b"".join(img.save(named=True))
client.images.remove("pyc:1")
loaded = client.images.load(data)
assert [i.id for i in loaded] == [img.id], (loaded, img.id)
out = client.containers.run("pyc:1", remove=True)
assert out == b"from-py\n", out
hist = client.images.get("pyc:1").history()
assert hist[0]["Id"] == img.id and hist[0]["Comment"] == "m", hist
assert hist[0]["Size"] == len("from-py\n"), hist
df = client.df()
assert df["LayersSize"] > 0 and df["BuildCache"] == [], df
print("image io ok")
