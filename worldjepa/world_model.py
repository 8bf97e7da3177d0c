"""WorldModel: encoder + state pooler + action-conditioned predictor, behind small verbs.

    wm = WorldModel.load("runs/world_reach/final")
    s = wm.encode(pixels)                         # uint8 (B, T, H, W, 3) -> (B, T, K, D)
    pred, _ = wm.rollout(s[:, -1:], actions)      # actions (B, H, A_env*frameskip) -> (B, H, K, D)
    e = wm.energy(pred, wm.encode(goal)[:, 0])    # (B,)

This is what planners (through a cost closure) and evaluation use.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import torch
from torch import nn

from worldjepa.models.encoder import EncoderConfig, VideoEncoder
from worldjepa.models.latent import Latent, LatentConfig
from worldjepa.models.predictor import ACPredictor, AttentivePooler, PredictorConfig
from worldjepa.models.vit import mlp


@dataclass(frozen=True)
class WorldModelSpec:
    """What a world model was trained on; checked when it is used."""

    task: str = "reach"  # task name of the training data
    image_size: int = 64
    env_action_dim: int = 2  # the env's action size
    frameskip: int = 1  # env steps per model step (model action = frameskip env actions)
    proprio_dim: int = 0  # env proprio size fed to the predictor (0 = not used)
    history: int = 1  # context steps the model was trained with

    def to_dict(self) -> dict:
        return asdict(self)


SHIPPED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")


def steps_weight(all_steps: bool | float) -> float:
    """The planner's ``energy_all_steps`` (True = 1, False = 0, or a weight) as a weight in [0, 1]."""
    if isinstance(all_steps, str) or not 0.0 <= float(all_steps) <= 1.0:
        raise ValueError(f"energy_all_steps must be a weight in [0, 1] (or true / false), got {all_steps!r}")
    return float(all_steps)


def check_energy_terms(latent_weight: float = 1.0, proprio_scale: str = "decoder", proprio_norm: str = "l1") -> None:
    """Refuse a bad ``energy_latent_weight`` (< 0), ``energy_proprio_scale`` (not decoder |
    readout) or ``energy_proprio_norm`` (not l1 | l2)."""
    if not latent_weight >= 0:
        raise ValueError(f"energy_latent_weight must be >= 0, got {latent_weight}")
    if proprio_scale not in ("decoder", "readout"):
        raise ValueError(f"energy_proprio_scale must be 'decoder' or 'readout', got {proprio_scale!r}")
    if proprio_norm not in ("l1", "l2"):
        raise ValueError(f"energy_proprio_norm must be 'l1' or 'l2', got {proprio_norm!r}")


def shipped_model(task: str) -> str | None:
    """Directory of the pre-trained model shipped in the package for ``task``, or None."""
    path = os.path.join(SHIPPED_DIR, task)
    return path if os.path.exists(os.path.join(path, "meta.json")) else None


class WorldModel(nn.Module):
    """Encoder (frozen or trained), attentive pooler to K state tokens, and predictor."""

    def __init__(self, enc: EncoderConfig, pred: PredictorConfig, spec: WorldModelSpec) -> None:
        super().__init__()
        if pred.enc_dim != enc.dim or (pred.num_state_tokens == 0 and pred.grid != enc.grid):
            raise ValueError(f"predictor (enc_dim={pred.enc_dim}, grid={pred.grid}) does not match the encoder (dim={enc.dim}, grid={enc.grid})")
        if pred.action_dim != spec.env_action_dim * spec.frameskip:
            raise ValueError(f"predictor action_dim {pred.action_dim} must equal env action dim {spec.env_action_dim} x frameskip {spec.frameskip}")
        self.enc_cfg, self.pred_cfg, self.spec = enc, pred, spec
        self.encoder = VideoEncoder(enc)
        self.pooler = AttentivePooler(enc.dim, pred.num_state_tokens, grid=enc.grid) if pred.num_state_tokens else None
        self.predictor = ACPredictor(pred)
        # inverse dynamics (PLDM): which action links two consecutive states; trained as an
        # auxiliary loss so the state tokens keep what the actions control
        self.idm = mlp(2 * enc.dim, [pred.idm_hidden], pred.action_dim) if pred.idm_hidden else None
        # per-step latent variable: posterior in training, prior when rolling out
        # its heads see the pooled state tokens and the proprio of a step
        lat_cfg = LatentConfig(z_dim=pred.z_dim, hidden=pred.z_hidden, kind=pred.z_kind, classes=pred.z_classes)
        lat_in = pred.proprio_dim if pred.z_inputs == "proprio" else enc.dim + pred.proprio_dim
        self.latent = Latent(lat_in, pred.action_dim, lat_cfg) if pred.z_dim else None
        # proprio read from the state tokens alone: what the planner compares the predicted
        # proprio with, since a goal is given only as an image (DESIGN.md section 3)
        if pred.proprio_decoder_hidden and not pred.proprio_dim:
            raise ValueError("predictor.proprio_decoder_hidden > 0 needs a model that uses proprio (use_proprio: true)")
        # it reads the flattened patch tokens (where things are is in which patch shows them),
        # or the K pooled state tokens (then its loss also keeps them informative, but a
        # K = 1 token reads a two-joint arm much less precisely: Reach's 2nd joint 0.65 vs 0.07)
        self._decode_states = pred.proprio_decoder_input == "states" and pred.num_state_tokens > 0
        n_in = (pred.num_state_tokens if self._decode_states else enc.grid * enc.grid) * enc.dim
        self.proprio_decoder = mlp(n_in, [pred.proprio_decoder_hidden] * 2, pred.proprio_dim) if pred.proprio_decoder_hidden else None
        if self.proprio_decoder is not None:
            # running mean absolute error of each decoded proprio dimension (updated in training):
            # the planner weighs each dimension by 1 / error, so what one image cannot show
            # (velocities) counts little and what it shows well (positions) counts most
            self.register_buffer("proprio_decoder_err", torch.ones(pred.proprio_dim))
        # the same read-out from the K pooled state tokens, as a training loss only: a pooler
        # trained by prediction alone can collapse (every frame to one token makes prediction
        # trivially perfect); having to carry the proprio keeps the pooled latent informative
        self.state_decoder = None
        if pred.state_decoder_hidden and pred.num_state_tokens and pred.proprio_dim:
            self.state_decoder = mlp(pred.num_state_tokens * enc.dim, [pred.state_decoder_hidden] * 2, pred.proprio_dim)
        # the goal read-out: a linear map from an image's flattened patch tokens to its proprio,
        # fitted in closed form after training (worldjepa/train/readout.py); None until then
        self.readout: nn.Linear | None = None
        self.readout_info: dict | None = None

    @property
    def action_dim(self) -> int:
        return self.pred_cfg.action_dim

    # ----- verbs --------------------------------------------------------------------------
    def pool(self, patches: torch.Tensor) -> torch.Tensor:
        """Patch tokens (..., N, D) -> state tokens (..., K, D) (identity when K = all patches)."""
        if self.pooler is None:
            return patches
        lead, (N, D) = patches.shape[:-2], patches.shape[-2:]
        return self.pooler(patches.reshape(-1, N, D)).view(*lead, -1, D)

    def inverse_dynamics(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        """Action predicted between state tokens s0 and s1 (..., K, D) -> (..., A)."""
        if self.idm is None:
            raise ValueError("this model has no inverse-dynamics head (predictor.idm_hidden = 0)")
        return self.idm(torch.cat([s0.mean(-2), s1.mean(-2)], dim=-1))

    def decode_proprio(self, patches: torch.Tensor, states: torch.Tensor | None = None) -> torch.Tensor:
        """Proprio read from an image's patch tokens (..., N, D) -> (..., P), e.g. of a goal image.

        With ``predictor.proprio_decoder_input = states`` it reads their pooled state tokens;
        pass ``states`` (..., K, D) when they are already computed, so they are not pooled twice."""
        if self.proprio_decoder is None:
            raise ValueError("this model has no proprio decoder (predictor.proprio_decoder_hidden = 0)")
        if self._decode_states:
            return self.proprio_decoder((self.pool(patches) if states is None else states).flatten(-2))
        return self.proprio_decoder(patches.flatten(-2))

    def set_readout(self, weight: torch.Tensor, bias: torch.Tensor, info: dict | None = None) -> None:
        """Attach a goal read-out: proprio = flattened patch tokens (N*D) @ weight (N*D, P) + bias (P)."""
        n_in = self.enc_cfg.grid * self.enc_cfg.grid * self.enc_cfg.dim
        if weight.shape != (n_in, self.spec.proprio_dim) or bias.shape != (self.spec.proprio_dim,):
            raise ValueError(
                f"read-out weight must be ({n_in}, {self.spec.proprio_dim}) and bias ({self.spec.proprio_dim},), got {tuple(weight.shape)} and {tuple(bias.shape)}"
            )
        ref = next(self.parameters())
        self.readout = nn.Linear(n_in, self.spec.proprio_dim).to(ref.device).requires_grad_(False)
        self.readout.weight.copy_(weight.T.to(ref))
        self.readout.bias.copy_(bias.to(ref))
        self.readout_info = {"in_features": n_in, **(info or {})}

    def read_proprio(self, patches: torch.Tensor) -> torch.Tensor:
        """The proprio the planner reads from an image's patch tokens (..., N, D) -> (..., P):
        the fitted linear read-out when there is one, else the proprio decoder."""
        if self.readout is None:
            return self.decode_proprio(patches)
        out = self.readout(patches.flatten(-2).to(self.readout.weight.dtype))
        use = self.readout_info.get("ridge_dims")
        if use is not None and not all(use):  # the dimensions the MLP decoder reads better
            use = torch.tensor(use, device=out.device)
            out = torch.where(use, out, self.decode_proprio(patches).to(out.dtype))
        return out

    def decode_state_proprio(self, states: torch.Tensor) -> torch.Tensor:
        """Proprio read from pooled state tokens (..., K, D) -> (..., P) (the auxiliary state decoder)."""
        if self.state_decoder is None:
            raise ValueError("this model has no state decoder (predictor.state_decoder_hidden = 0, or K = all patches)")
        return self.state_decoder(states.flatten(-2))

    def proprio_distance(self, pred: torch.Tensor, goal: torch.Tensor, scale: str = "decoder", norm: str = "l1") -> torch.Tensor:
        """Distance between proprio vectors in units of each dimension's error, (..., P) -> (...).

        ``norm="l1"``: the mean over dimensions of |pred - goal| / error. ``"l2"``: the root
        mean square of the same ratios, a Euclidean distance (divided by sqrt(P), so that
        it equals l1 when one dimension differs). Where the proprio holds a position, l2
        is the straight-line distance to the goal; l1 adds the axes up, so a diagonal
        costs up to sqrt(2) times more than it would in a straight line. (On Hazard the
        simulator planned as its own model does as well with either: 46/50 each,
        docs/BENCHMARKS.md section 5.)

        ``scale="decoder"``: each dimension's error is the proprio decoder's training error
        (as the planning figures of Reach, TwoRoom and Push were measured). ``"readout"``:
        the held-out error of the goal read-out actually in use (the fitted ridge map or
        the decoder, whichever reads that dimension better), so that a dimension a still
        goal image cannot show (a velocity, read to 0.3 where a position reads to 0.007 on
        Hazard) weighs little. Falls back to the decoder's when no read-out was fitted.
        """
        check_energy_terms(proprio_scale=scale, proprio_norm=norm)
        fitted = self.readout_info is not None and "val_err" in self.readout_info
        if fitted and (scale == "readout" or self.proprio_decoder is None):
            err = torch.tensor(self.readout_info["val_err"], dtype=pred.dtype, device=pred.device)
        elif self.proprio_decoder is not None:
            err = self.proprio_decoder_err
        else:
            err = torch.ones(pred.shape[-1], dtype=pred.dtype, device=pred.device)
        z = (pred - goal) / err.clamp_min(1e-3)
        return z.abs().mean(-1) if norm == "l1" else z.pow(2).mean(-1).sqrt()

    def goal_energy(
        self,
        pred: torch.Tensor,
        pred_proprio: torch.Tensor | None,
        goal: torch.Tensor,
        goal_proprio: torch.Tensor | None = None,
        kind: str = "l1",
        proprio_weight: float = 0.0,
        all_steps: bool | float = False,
        latent_weight: float = 1.0,
        proprio_scale: str = "decoder",
        proprio_norm: str = "l1",
    ) -> torch.Tensor:
        """The planning energy: ``energy`` of predicted states (..., H, K, D) to the goal's
        (..., K, D), plus ``proprio_weight`` x ``proprio_distance`` of the predicted proprio
        (..., H, P) to the proprio read from the goal image (..., P). Returns (...).

        ``all_steps`` in [0, 1] weighs the mean over every predicted step against the final
        step: 0 (False) scores where the plan ends, 1 (True) the average over the way, which
        rewards arriving early but also the greedy way into a dead end; in between, the end
        counts most and, of two plans that end alike, the one that gets there sooner wins.
        ``latent_weight`` scales the state-token term (0: the proprio term alone, for a
        model whose pooled latent tells little of the state, as on Hazard).
        ``proprio_scale``, ``proprio_norm``: how the proprio dimensions are weighed and
        summed (``proprio_distance``).
        """
        w = steps_weight(all_steps)
        check_energy_terms(latent_weight, proprio_scale, proprio_norm)
        e = self.energy(pred, goal, kind=kind, last_only=True)
        if w > 0:
            e = (1 - w) * e + w * self.energy(pred, goal, kind=kind, last_only=False)
        e = latent_weight * e
        if proprio_weight > 0:
            per_step = self.proprio_distance(pred_proprio if w > 0 else pred_proprio[..., -1:, :], goal_proprio.unsqueeze(-2), proprio_scale, proprio_norm)
            e = e + proprio_weight * ((1 - w) * per_step[..., -1] + w * per_step.mean(-1))
        return e

    @torch.no_grad()
    def encode_goal(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A goal image (B, H, W, 3) uint8 -> state tokens (B, K, D) and the proprio read from it (B, P) or None."""
        patches = self.encoder.encode_frames(pixels[:, None])  # (B, 1, N, D)
        tokens = self.pool(patches)[:, 0]
        readable = self.proprio_decoder is not None or self.readout is not None
        return tokens, (self.read_proprio(patches[:, 0]) if readable else None)

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 frames (B, T, H, W, 3) -> state tokens (B, T, K, D). Each frame is encoded on its own."""
        return self.pool(self.encoder.encode_frames(pixels))

    def hold(self, env_actions: torch.Tensor) -> torch.Tensor:
        """Model actions that hold one env action for the whole frameskip: (..., A_env) -> (..., A_env * frameskip).

        Planners that search over held actions search a frameskip-times smaller space, and
        each candidate moves the agent as far as one action can (independent env actions
        within a model step mostly cancel out)."""
        if env_actions.shape[-1] != self.spec.env_action_dim:
            raise ValueError(f"held actions must have {self.spec.env_action_dim} (the env's action size) as last dim, got {tuple(env_actions.shape)}")
        fs = self.spec.frameskip
        return env_actions.unsqueeze(-2).expand(*env_actions.shape[:-1], fs, env_actions.shape[-1]).reshape(*env_actions.shape[:-1], -1)

    def check_actions(self, actions: torch.Tensor) -> None:
        if actions.dim() != 3 or actions.shape[-1] != self.action_dim:
            raise ValueError(
                f"actions must have shape (B, H, {self.action_dim}) = frameskip {self.spec.frameskip} x env action dim {self.spec.env_action_dim}, got {tuple(actions.shape)}"
            )
        if not torch.isfinite(actions).all():
            raise ValueError("actions contain NaN or Inf")

    def rollout(
        self,
        context: torch.Tensor,
        actions: torch.Tensor,
        proprio: torch.Tensor | None = None,
        context_actions: torch.Tensor | None = None,
        use_cache: bool = True,
        grad: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Predict H future states from C context states (no autograd unless ``grad=True``).

        Args:
            context: (B, C, K, D) state tokens of the observed steps.
            actions: (B, H, A) actions from the last context step on (A = frameskip x env action dim).
            proprio: (B, C, P) context proprio, if the model uses proprio.
            context_actions: (B, C-1, A) actions executed between the context steps (needed when C > 1).
            use_cache: KV-cached rollout (default); False recomputes the growing sequence.
            grad: keep the autograd graph (gradient planners differentiate through it).

        Returns:
            states (B, H, K, D) of the H steps after the context, and proprio (B, H, P) or None.
        """
        self.check_actions(actions)
        B, C = context.shape[:2]
        if self.spec.proprio_dim and proprio is None:
            raise ValueError(f"this model uses proprio: pass proprio (B, {C}, {self.spec.proprio_dim})")
        full = actions
        if C > 1:
            if context_actions is None or context_actions.shape != (B, C - 1, self.action_dim):
                raise ValueError(f"a context of {C} steps needs context_actions of shape ({B}, {C - 1}, {self.action_dim})")
            full = torch.cat([context_actions, actions], dim=1)
        with torch.set_grad_enabled(grad):
            if self.latent is not None:  # the most likely future: z at each step is the prior's mode
                return self._latent_rollout(context, full, proprio, sample=False, use_cache=use_cache)
            return self.predictor.rollout(context, full, proprio if self.spec.proprio_dim else None, use_cache=use_cache)

    def latent_features(self, states: torch.Tensor, proprio: torch.Tensor | None) -> torch.Tensor:
        """What the latent heads see of a step: pooled state tokens (B, T, K, D) -> mean over K, plus
        proprio; or the proprio alone (``predictor.z_inputs: proprio``)."""
        if self.spec.proprio_dim and self.predictor.cfg.z_inputs == "proprio":
            return proprio
        f = states.mean(-2)
        return torch.cat([f, proprio], -1) if self.spec.proprio_dim else f

    @torch.no_grad()
    def code_predictions(self, states: torch.Tensor, actions: torch.Tensor, proprio: torch.Tensor) -> torch.Tensor:
        """Every code's one-step proprio prediction (categorical z): from state tokens
        (B, 1, K, D), actions (B, 1, A) and proprio (B, 1, P) -> (B, M, P), one row per code
        of ``latent.all_codes()``."""
        codes = self.latent.all_codes().to(states.device)
        return torch.stack([self.predictor(states, actions, proprio, z=c.expand(len(actions), 1, -1))[1][:, 0] for c in codes], 1)

    @torch.no_grad()
    def code_probs(self, states: torch.Tensor, actions: torch.Tensor, proprio: torch.Tensor) -> torch.Tensor:
        """The prior's probability of each code (categorical z) for one step: state tokens
        (B, 1, K, D), actions (B, 1, A), proprio (B, 1, P) -> (B, M), in the order of
        ``latent.all_codes()``."""
        return self.latent.code_log_probs(self.latent.prior(self.latent_features(states, proprio)[:, 0], actions[:, 0])).exp()

    def _latent_rollout(
        self,
        context: torch.Tensor,
        full: torch.Tensor,
        proprio: torch.Tensor | None,
        sample: bool,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
        noise=None,
        perturb=None,
        min_prob: float = 0.0,
        uniform=None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Rollout of a latent model. Observed transitions inside the context use the
        posterior (the next state is known); every other step draws z from the prior
        (``sample``) or takes its mean. ``noise``: a callable giving the noise of each
        successive draw (``Latent.sample``), instead of the generator. ``perturb``: as in
        ``Predictor.rollout``. ``min_prob``: prior draws skip codes below it (``Latent.truncate``).
        ``uniform``: a callable giving the uniforms of each successive draw, taken through the
        inverse CDF (``Latent.sample_inverse``) instead of ``noise`` or the generator."""
        lat = self.latent
        C = context.shape[1]
        prop = proprio if self.spec.proprio_dim else None

        def draw(dist):
            if not sample:
                return lat.mode(dist)
            if uniform is not None:
                return lat.sample_inverse(dist, uniform())
            return lat.sample(dist, generator=generator, noise=noise() if noise is not None else None)

        feats = self.latent_features(context, prop)  # (B, C, D + P)
        zs = [draw(lat.posterior(feats[:, t], full[:, t], feats[:, t + 1])) for t in range(C - 1)]
        zs.append(draw(lat.truncate(lat.prior(feats[:, C - 1], full[:, C - 1]), min_prob)))

        def z_next(s, p, a):
            return draw(lat.truncate(lat.prior(self.latent_features(s, p)[:, 0], a[:, 0]), min_prob)).unsqueeze(1)

        return self.predictor.rollout(context, full, prop, use_cache=use_cache, z_context=torch.stack(zs, 1), z_next=z_next, perturb=perturb)

    @torch.no_grad()
    def sample_futures(
        self,
        context: torch.Tensor,
        actions: torch.Tensor,
        k: int,
        proprio: torch.Tensor | None = None,
        context_actions: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        common: bool = False,
        proprio_noise: float = 0.0,
        min_prob: float = 0.0,
        stratified: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """k sampled futures per candidate, batched with the candidates and KV-cached.

        Args as ``rollout``; k >= 1 futures, each with its own z drawn from the prior.
        ``common``: common random numbers; future j of every candidate draws its z from
        the same noise, so candidates are compared on the same k scenarios (a candidate
        cannot look safe because its own draws happened to miss the risk).
        ``proprio_noise``: the std (proprio units) of a normal error added to each
        predicted proprio step of each future, which the next step then starts from: the
        futures then also hold the model's own imprecision, not only the task's chance, so
        a plan that needs a precise prediction to pass a hazard is scored as risky (a
        perfect model with 2 cm of such error still plans 88 % on Hazard, docs/BENCHMARKS.md
        section 5). Drawn from ``generator``, shared by the candidates with ``common``.
        ``min_prob``: (categorical z) each prior draw skips the codes the prior gives less
        than this, renormalising the rest (``Latent.truncate``), so that the prior's leftover
        mass on codes that fit nothing is not drawn as a future (on the old Hazard layout
        0.15 did not change how a model ranked plans; docs/BENCHMARKS.md section 5). 0 = the
        prior as it is.
        ``stratified``: the k futures of a candidate draw each z by systematic sampling
        (``Latent.stratified_noise``) instead of independently: each future is still a draw
        from the prior, but where the k futures share a prior (the first model step) a code
        of probability p is taken floor(k p) or ceil(k p) times, so an outcome the prior
        gives >= 1/k is never missed. Later steps, where the futures' priors differ, are
        shuffled anew and stay independent of earlier ones. Works with ``common``.

        Returns:
            states (B, k, H, K, D) and proprio (B, k, H, P) or None.
        """
        if k <= 0:
            raise ValueError(f"k (futures per candidate) must be >= 1, got {k}")
        if not proprio_noise >= 0:
            raise ValueError(f"proprio_noise must be >= 0 (a std in proprio units), got {proprio_noise}")
        if proprio_noise > 0 and not self.spec.proprio_dim:
            raise ValueError("proprio_noise > 0 needs a model that predicts proprio (this one has proprio_dim = 0)")
        if self.latent is None:
            raise ValueError(
                "this checkpoint has no latent variable (predictor.z_dim = 0): it predicts one future; train with predictor.z_dim > 0 to sample several"
            )
        self.check_actions(actions)
        B, C = context.shape[:2]
        if C > 1 and (context_actions is None or context_actions.shape != (B, C - 1, self.action_dim)):
            raise ValueError(f"a context of {C} steps needs context_actions of shape ({B}, {C - 1}, {self.action_dim})")
        full = actions if C == 1 else torch.cat([context_actions, actions], 1)
        rep = lambda x: x.repeat_interleave(k, 0) if x is not None else None  # noqa: E731
        noise = uniform = None
        if stratified:  # uniforms for the inverse CDF instead of the Gumbel noise: one set of k per candidate, or one shared set with common

            def uniform():
                u = self.latent.stratified_noise(1 if common else B, k, generator)
                return (u.repeat(B, 1) if common else u).to(context.device)

        elif common:  # rows are (candidate, future) pairs, future fastest: the k noises tile over the candidates

            def noise():
                n = self.latent.draw_noise(k, generator)  # (k, *noise_shape)
                return n.repeat(B, *([1] * (n.dim() - 1))).to(context.device)  # (B*k, *noise_shape)

        perturb = None
        if proprio_noise > 0:

            def perturb(p):  # p (B*k, 1, P): one normal draw per future, tiled over the candidates when common
                n = torch.randn((k if common else B * k, 1, p.shape[-1]), generator=generator)
                n = n.repeat(B, 1, 1) if common else n
                return p + proprio_noise * n.to(p)

        states, props = self._latent_rollout(
            rep(context), rep(full), rep(proprio), sample=True, generator=generator, noise=noise, perturb=perturb, min_prob=min_prob, uniform=uniform
        )
        return states.view(B, k, *states.shape[1:]), (props.view(B, k, *props.shape[1:]) if props is not None else None)

    @staticmethod
    def energy(pred: torch.Tensor, goal: torch.Tensor, kind: str = "l1", last_only: bool = True) -> torch.Tensor:
        """Distance between predicted states (..., H, K, D) and a goal (..., K, D).

        kind: "l1" (mean absolute) or "l2" (mean squared). last_only: final step only, else
        the mean over all steps. Returns (...,).
        """
        if kind not in ("l1", "l2"):
            raise ValueError(f"energy kind must be 'l1' or 'l2', got {kind!r}")
        diff = (pred[..., -1:, :, :] if last_only else pred) - goal.unsqueeze(-3)
        d = diff.abs() if kind == "l1" else diff.pow(2)
        return d.mean(dim=(-1, -2, -3))

    # ----- persistence --------------------------------------------------------------------
    def meta(self) -> dict:
        meta = {"kind": "world_model", "encoder": self.enc_cfg.to_dict(), "predictor": self.pred_cfg.to_dict(), "spec": self.spec.to_dict()}
        if self.readout_info is not None:
            meta["readout"] = self.readout_info
        return meta

    @classmethod
    def load(cls, path: str, map_location: str | torch.device = "cpu") -> WorldModel:
        """Load a world-model checkpoint directory strictly (safetensors + meta.json)."""
        from worldjepa.train.checkpoint import CheckpointError, load_state, load_strict, read_meta

        meta = read_meta(path)
        if meta.get("kind") != "world_model":
            raise CheckpointError(f"{path} is a {meta.get('kind', 'unknown')!r} checkpoint, not a world model (train one with `worldjepa train`)")
        model = cls(EncoderConfig(**meta["encoder"]), PredictorConfig(**meta["predictor"]), WorldModelSpec(**meta["spec"]))
        if "readout" in meta:  # shaped here so that the strict load below fills it
            n_in, P = int(meta["readout"]["in_features"]), model.spec.proprio_dim
            model.set_readout(torch.zeros(n_in, P), torch.zeros(P), {k: v for k, v in meta["readout"].items() if k != "in_features"})
        state = load_state(path)
        load_strict(model, state, source=path)
        return model.to(map_location).eval()

    def save(self, path: str, dtype: torch.dtype | None = None, meta: dict | None = None) -> str:
        """Write a checkpoint directory (``dtype=torch.float16`` halves its size)."""
        from worldjepa.train.checkpoint import save_checkpoint

        return save_checkpoint(os.path.abspath(path), self, {**(meta or {}), **self.meta()}, dtype=dtype)
