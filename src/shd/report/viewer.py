"""Rotatable part-coloured meshes in one offline HTML page, on trimesh's bundled three.js.

trimesh ships a viewer template (`templates/viewer.zip`) that inlines three.js r140 with its
TrackballControls and GLTFLoader: the libraries, then a one-scene `init()`. Its `scene_to_html` makes a
whole page per scene (712 kB each), and a page has at most 16 live WebGL contexts, so a grid of 200
viewers cannot be 200 copies of it. This module takes the template's library part once and drives it
with a small script: one shared `WebGLRenderer` renders each viewer's scene and copies the picture into
that viewer's own 2D canvas, only when the viewer scrolls into view (lazy) or is dragged (Trackball
rotation). Meshes travel as GLB (shd.eval.export: one node per part, palette colours) in base64,
each stored once however many viewers show it.
"""

from __future__ import annotations

import base64
import functools
import html
import json

import trimesh
from trimesh import resources, util

from shd.eval.export import mesh_bytes
from shd.eval.meshing import MeshResult
from shd.eval.render import EYE

FRAME_RADIUS = 0.7  # the [-0.5, 0.5]^3 box the fields live in, all but its corners (at 0.87)
# the template's own viewer code starts here; everything before it is the libraries
_TEMPLATE_APP = "var camera,controls,scene,renderer,tracklight;"


@functools.cache
def three_js() -> str:
    """three.js + TrackballControls + GLTFLoader as trimesh's template inlines them (no network)."""
    template = util.decompress(resources.get_bytes("templates/viewer.zip"), file_type="zip")
    text = template["viewer.html.template"].read().decode("utf-8")
    start, end = text.find("<script>"), text.find(_TEMPLATE_APP)
    if start < 0 or end < 0:
        raise RuntimeError(
            f"trimesh {trimesh.__version__}'s viewer template has changed: no library part "
            f"before {_TEMPLATE_APP!r}; the report needs the layout of trimesh 5.2"
        )
    return text[start + len("<script>") : end]


def glb_base64(mesh: MeshResult, part_names: list[str] | tuple[str, ...] | None) -> str:
    """The mesh as part-coloured GLB, base64 for inlining."""
    return base64.b64encode(mesh_bytes(mesh, "glb", part_names)).decode("ascii")


def mesh_block(key: str, b64: str) -> str:
    """One stored mesh: a non-executed script element the viewers look up by key."""
    return f'<script type="application/octet-stream" id="mesh-{html.escape(key)}">{b64}</script>'


def viewer_div(key: str, caption: str = "", title: str = "") -> str:
    """A viewer of the stored mesh `key`, with a caption under it."""
    return (
        f'<figure class="shape"><div class="viewer" data-mesh="{html.escape(key)}" '
        f'title="{html.escape(title)}"></div><figcaption>{caption}</figcaption></figure>'
    )


def placeholder_div(text: str, caption: str = "") -> str:
    """A cell where a mesh would be, for shapes that could not be meshed."""
    return (
        f'<figure class="shape"><div class="viewer missing">{html.escape(text)}</div>'
        f"<figcaption>{caption}</figcaption></figure>"
    )


VIEWER_CSS = """
.viewer { width: var(--vpx); height: var(--vpx); background: #fff; border: 1px solid #ddd; cursor: grab;
          touch-action: none; }
.viewer canvas { display: block; width: 100%; height: 100%; }
.viewer.missing { display: flex; align-items: center; justify-content: center; color: #888;
                  font-size: 12px; text-align: center; cursor: default; }
"""

_VIEWER_JS = r"""
(function () {
  "use strict";
  const EYE = new THREE.Vector3(...__EYE__);
  const state = { drawn: 0, failed: 0, started: 0, firstDrawMs: null, errors: [] };
  window.shdReport = state;
  const renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
  renderer.setPixelRatio(1);
  const loader = new THREE.GLTFLoader();
  const dragging = new Set();

  function decode(b64) {
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return bytes.buffer;
  }

  function shade(object) {  // matte part colours, lit from the camera (as the PNG renders are)
    object.traverse(function (node) {
      if (!node.isMesh) return;
      if (!node.geometry.attributes.normal) node.geometry.computeVertexNormals();
      node.material = new THREE.MeshLambertMaterial({ vertexColors: true, side: THREE.DoubleSide });
    });
  }

  function start(el) {
    state.started++;
    const block = document.getElementById("mesh-" + el.dataset.mesh);
    const px = Math.max(16, Math.round(el.clientWidth));
    const canvas = document.createElement("canvas");
    canvas.width = px; canvas.height = px;
    el.appendChild(canvas);
    const ctx = canvas.getContext("2d");
    const scene = new THREE.Scene();
    scene.background = new THREE.Color(0xffffff);
    scene.add(new THREE.HemisphereLight(0xffffff, 0x888888, 0.55));
    const light = new THREE.DirectionalLight(0xffffff, 0.75);
    scene.add(light);
    const camera = new THREE.PerspectiveCamera(30, 1, 0.01, 100);
    let controls = null;

    function draw() {
      light.position.copy(camera.position);
      renderer.setSize(px, px, false);
      renderer.render(scene, camera);
      ctx.clearRect(0, 0, px, px);
      ctx.drawImage(renderer.domElement, 0, 0);
      if (el.dataset.state !== "drawn") {
        el.dataset.state = "drawn";
        state.drawn++;
        if (state.firstDrawMs === null) state.firstDrawMs = performance.now();
      }
    }

    function fail(message) {
      el.dataset.state = "error";
      state.failed++;
      state.errors.push(el.dataset.mesh + ": " + message);
      console.error("shd report viewer " + el.dataset.mesh + ": " + message);
    }

    if (!block) { fail("no stored mesh"); return; }
    loader.parse(decode(block.textContent.trim()), "", function (gltf) {
      const root = gltf.scene;
      shade(root);
      scene.add(root);
      // every shape framed the same: the [-0.5, 0.5]^3 box the fields live in, so sizes compare
      const sphere = new THREE.Sphere(new THREE.Vector3(0, 0, 0), __RADIUS__);
      const distance = sphere.radius / Math.sin(THREE.MathUtils.degToRad(camera.fov / 2));
      camera.position.copy(sphere.center).addScaledVector(EYE, distance);
      camera.lookAt(sphere.center);
      controls = new THREE.TrackballControls(camera, canvas);
      controls.target.copy(sphere.center);
      controls.rotateSpeed = 3.0;
      controls.noZoom = true;  // the wheel scrolls the page, not the 200 viewers on it
      controls.noPan = true;
      controls.staticMoving = true;
      controls.addEventListener("change", draw);
      controls.addEventListener("start", function () { dragging.add(controls); loop(); });
      controls.addEventListener("end", function () { dragging.delete(controls); });
      canvas.addEventListener("dblclick", function () { controls.reset(); draw(); });
      controls.update();
      draw();
    }, function (err) { fail(String(err && err.message || err)); });

    canvas.addEventListener("pointerdown", function () { if (controls) controls.handleResize(); }, true);
  }

  let looping = false;
  function loop() {  // Trackball applies drags in update(): run it only while a viewer is dragged
    if (looping) return;
    looping = true;
    (function frame() {
      dragging.forEach(function (c) { c.update(); });
      if (dragging.size) requestAnimationFrame(frame); else looping = false;
    })();
  }

  const viewers = document.querySelectorAll(".viewer[data-mesh]");
  state.total = viewers.length;
  const seen = new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      if (!entry.isIntersecting) return;
      seen.unobserve(entry.target);
      start(entry.target);
    });
  }, { rootMargin: "300px" });
  viewers.forEach(function (el) { seen.observe(el); });
})();
"""


def viewer_script() -> str:
    """The page's one copy of three.js and the viewer code (to go at the end of <body>)."""
    eye = json.dumps([round(float(v), 6) for v in EYE])
    code = _VIEWER_JS.replace("__EYE__", eye).replace("__RADIUS__", str(FRAME_RADIUS))
    return f"<script>{three_js()}</script>\n<script>{code}</script>"
