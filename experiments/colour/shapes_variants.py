import numpy as np
from convae_utils import shapes

_orig = shapes._draw_params

def _hsv_to_rgb(h, s, v):
    # vectorised HSV -> RGB, h,s,v arrays (n,)
    i = np.floor(h * 6).astype(int) % 6
    f = h * 6 - np.floor(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r = np.choose(i, [v, q, p, p, t, v]); g = np.choose(i, [t, v, v, q, p, p]); b = np.choose(i, [p, p, t, v, v, q])
    return np.stack([r, g, b], 1).astype(np.float32)

def _sat_params(rng, labels):
    p = _orig(rng, labels)
    n = len(labels)
    light_on_dark = p["background"].mean(1) < p["foreground"].mean(1)
    dark = _hsv_to_rgb(rng.random(n), rng.uniform(0.5, 1.0, n), rng.uniform(0.25, 0.5, n))
    light = _hsv_to_rgb(rng.random(n), rng.uniform(0.5, 1.0, n), rng.uniform(0.7, 1.0, n))
    p["background"] = np.where(light_on_dark[:, None], dark, light)
    p["foreground"] = np.where(light_on_dark[:, None], light, dark)
    return p

def maker(name):
    if name == "shapes10":
        shapes._draw_params = _orig
    elif name == "shapes-sat":
        shapes._draw_params = _sat_params
    return shapes.make_shapes10

def _classhue_params(rng, labels):
    p = _orig(rng, labels)
    n = len(labels)
    light_on_dark = p["background"].mean(1) < p["foreground"].mean(1)
    hue = (labels / 10.0 + rng.uniform(-0.03, 0.03, n)) % 1.0
    dark = _hsv_to_rgb(hue, rng.uniform(0.5, 0.9, n), rng.uniform(0.25, 0.5, n))
    light = _hsv_to_rgb((hue + 0.5) % 1.0, rng.uniform(0.3, 0.7, n), rng.uniform(0.75, 1.0, n))
    p["background"] = np.where(light_on_dark[:, None], dark, light)
    p["foreground"] = np.where(light_on_dark[:, None], light, dark)
    return p

_base_maker = maker
def maker(name):
    if name == "shapes-classhue":
        shapes._draw_params = _classhue_params
        return shapes.make_shapes10
    return _base_maker(name)
