"""World-model training: the action-conditioned predictor (and, in the joint recipe, the encoder).

Recipes (``recipe``):

* ``frozen`` (V-JEPA 2-AC): a pre-trained encoder stays frozen. Loss: L1 teacher forcing
  (predict steps 1..T-1 from steps 0..T-2) + L1 over ``rollout_steps`` autoregressive
  steps from the first ``history`` steps, gradients flowing through the rollout.
* ``joint`` (LeWM/PLDM style): the encoder is trained too, end to end, from scratch or
  from a pre-trained encoder, with an anti-collapse regulariser on the state tokens.

When K < all patches the attentive pooler is trained in both recipes; the state tokens
it produces are then regularised as well (SIGReg by default), since a pooler that maps
every frame to the same tokens would make prediction trivially perfect.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from worldjepa.data.clips import ClipDataset, rare_clip_weights, split_episodes
from worldjepa.losses import SIGReg, vicreg_terms
from worldjepa.models.encoder import EncoderConfig
from worldjepa.models.predictor import PredictorConfig
from worldjepa.train.loop import TrainConfig, Trainer
from worldjepa.world_model import WorldModel, WorldModelSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorldObjective:
    """World-model objective (configs/train_world.yaml, key ``objective``)."""

    recipe: str = "frozen"  # frozen | joint
    history: int = 1  # context steps before the rollout loss starts
    rollout_steps: int = 2  # autoregressive steps in the rollout loss
    clip_len: int = 8  # model steps per training clip (>= history + rollout_steps)
    frameskip: int = 1  # env steps per model step
    clip_stride: int = 1  # env steps between training clip starts; set to the data's policy_hold so a model step's actions are one held block
    rollout_weight: float = 1.0
    proprio_weight: float = 0.1  # weight of the predicted proprio's loss (if used)
    proprio_loss: str = "l1"  # l1 | mse: the predicted proprio's loss (mse: a latent code's effect is the mean of what it explains, not the median, which stays 0 while a code also serves the steps where nothing random happens)
    reg: str = "sigreg"  # regulariser on trainable state tokens: sigreg | vicreg | none
    reg_weight: float = 0.05
    idm_weight: float = 0.0  # inverse-dynamics loss (needs predictor.idm_hidden > 0)
    kl_weight: float = 0.1  # latent models (predictor.z_dim > 0): weight of KL(posterior || prior)
    free_bits: float = 1.0  # nats per step of KL that are not penalised
    kl_balance: float = 0.8  # share of the KL gradient that trains the prior (the rest pulls the posterior; DreamerV2)
    z_marginal_proprio: bool = False  # predictor.z_to_proprio with a categorical z: the proprio loss (l1 or mse) of the direct z path is the exact expectation over the posterior's codes, not one sampled code
    z_null_cost: float = 0.0  # predictor.z_null models: loss per step times the posterior's probability of a non-null code, so that where nothing random happens (every code predicts alike) the posterior, and so the prior, settle on the null code
    z_null_weight: float = 0.0  # predictor.z_null models: weight of the null code's own teacher-forced loss on every step (the prediction and proprio losses with z = null), so that the null code predicts what to expect without z (the mean under mse) and is a good choice wherever nothing random happens
    z_null_warmup: int = 0  # steps without the null cost (the codes first learn what they say), then it ramps up over as many again; 0 = from the start (on Hazard the push was not learned either way: docs/BENCHMARKS.md §5, tenth session)
    z_assign: str = "posterior"  # how training picks each step's code: "posterior" (sampled from the learned posterior) | "wta" (winner takes all: the code whose prediction of the next proprio is closest; the prior learns to predict that code; needs one categorical group and the direct path; with predictor.z_token=true one extra forward pass per code)
    z_wta_relax: float = 0.02  # z_assign=wta: weight of every other code's loss beside the winner's (keeps the codes that lose near the data, so where nothing random happens they agree); with predictor.z_token=true it is the loss of one more pass of the predictor (state tokens and proprio) with a code drawn at random for each step
    z_wta_margin: float = 0.0  # z_assign=wta: a code wins only if its predicted proprio is nearer the target (L2, proprio units) than every lower-numbered code's by more than this; ties go to the lowest-numbered code, so where the codes agree one code wins and the prior learns to name it. 0 = the code with the smallest proprio loss
    z_wta_margin_warmup: int = 0  # z_assign=wta: steps with no margin (the codes first split the outcomes), then it ramps up over as many
    rollout_proprio: bool = False  # the rollout loss also scores the predicted proprio (objective.proprio_loss, times proprio_weight) at each autoregressive step, not only the state tokens
    kl_warmup: int = 0  # steps over which the KL weight ramps up from 0 (z and the predictor agree on a code before it is priced); 0 = none
    proprio_decode_weight: float = 0.0  # L1 of proprio decoded from the patch tokens (needs predictor.proprio_decoder_hidden > 0)
    state_decode_weight: float = 0.0  # L1 of proprio decoded from the pooled state tokens (needs predictor.state_decoder_hidden > 0)
    target_stopgrad: bool = False  # no gradient through the target state tokens (V-JEPA); the pooler then learns only from the context side and the decoder
    oversample: float = 0.0  # clips that hold a rare transition (an env step that a linear model of the proprio cannot explain: a gust's push, a wall) are drawn 1 + this times as often (worldjepa.data.clips.rare_clip_weights); 0 = uniform. The prior refit at the end of training reads the data unweighted
    rare_quantile: float = 0.99  # with oversample: an env step is rare when its residual lies above this quantile of all
    batch_size: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        if self.recipe not in ("frozen", "joint"):
            raise ValueError(f"objective.recipe must be 'frozen' or 'joint', got {self.recipe!r}")
        if self.reg not in ("sigreg", "vicreg", "none"):
            raise ValueError(f"objective.reg must be sigreg, vicreg or none, got {self.reg!r}")
        if self.proprio_loss not in ("l1", "mse"):
            raise ValueError(f"objective.proprio_loss must be 'l1' or 'mse', got {self.proprio_loss!r}")
        if self.clip_stride < 1:
            raise ValueError(f"objective.clip_stride must be >= 1 env step, got {self.clip_stride}")
        if self.z_null_cost < 0 or self.z_null_warmup < 0 or self.z_null_weight < 0:
            raise ValueError(
                f"objective.z_null_cost, z_null_weight and z_null_warmup must be >= 0, got {self.z_null_cost}, {self.z_null_weight}, {self.z_null_warmup}"
            )
        if self.z_assign not in ("posterior", "wta"):
            raise ValueError(f"objective.z_assign must be 'posterior' or 'wta', got {self.z_assign!r}")
        if self.z_wta_relax < 0 or self.z_wta_margin < 0 or self.z_wta_margin_warmup < 0:
            raise ValueError(
                f"objective.z_wta_relax, z_wta_margin and z_wta_margin_warmup must be >= 0, got {self.z_wta_relax}, {self.z_wta_margin}, {self.z_wta_margin_warmup}"
            )
        if self.oversample < 0 or not 0.0 < self.rare_quantile < 1.0:
            raise ValueError(f"need objective.oversample >= 0 and 0 < objective.rare_quantile < 1, got {self.oversample}, {self.rare_quantile}")
        if self.kl_warmup < 0:
            raise ValueError(f"objective.kl_warmup must be >= 0 steps, got {self.kl_warmup}")
        if not 0.0 <= self.kl_balance <= 1.0:
            raise ValueError(f"objective.kl_balance must lie in [0, 1], got {self.kl_balance}")
        if self.history < 1 or self.rollout_steps < 0 or self.clip_len < self.history + max(1, self.rollout_steps):
            raise ValueError(f"need history >= 1 and clip_len >= history + rollout_steps, got {self.history}, {self.rollout_steps}, {self.clip_len}")


def proprio_err(pred: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-step proprio error, L1 (``kind="l1"``) or squared (``"mse"``), mean over dimensions: (..., P) -> (...)."""
    diff = pred - target
    return (diff.abs() if kind == "l1" else diff.pow(2)).mean(-1)


def wta_winner(err: torch.Tensor, dist: torch.Tensor, margin: float) -> torch.Tensor:
    """Each step's winning code (...): with ``margin`` 0 the code with the smallest loss
    ``err`` (..., M); else the lowest-numbered code whose distance ``dist`` (..., M) is within
    ``margin`` of the smallest."""
    if margin <= 0:
        return err.argmin(-1)
    near = dist <= dist.min(-1, keepdim=True).values + margin
    return near.to(torch.uint8).argmax(-1)  # the first code that is near enough


def every_code_proprio(model: WorldModel, prop: torch.Tensor, z: torch.Tensor, proprio: torch.Tensor | None, actions: torch.Tensor | None) -> torch.Tensor:
    """Every code's proprio prediction (B, T, M, P), taken as ``prop`` (B, T, P), predicted
    with codes ``z`` (B, T, Z), less z's direct-path offset plus each code's own (the MLP
    direct path also reads the steps' ``proprio`` and ``actions``)."""
    pred = model.predictor
    codes = model.latent.all_codes().to(prop)  # (M, Z)
    base = prop - pred.z_direct(z, proprio, actions)  # remove z's offset (value and gradient)
    M, (B, T) = len(codes), prop.shape[:2]
    ctx = [t.unsqueeze(-2).expand(B, T, M, -1) for t in (proprio, actions)] if proprio is not None and actions is not None else [None, None]
    return base.unsqueeze(-2) + pred.z_direct(codes.expand(B, T, M, -1), *ctx)


def marginal_proprio_loss(
    model: WorldModel,
    prop: torch.Tensor,
    z: torch.Tensor,
    post: tuple,
    target: torch.Tensor,
    kind: str = "l1",
    proprio: torch.Tensor | None = None,
    actions: torch.Tensor | None = None,
) -> torch.Tensor:
    """L1 (``kind="l1"``) or squared error (``"mse"``) of the predicted proprio, in
    expectation over the posterior's codes on the direct z -> proprio path
    (``objective.z_marginal_proprio``).

    ``prop`` = base + D(z) for the sampled code z, where base is what the transformer
    predicts and D the direct path (linear W z, or the MLP of (z, proprio, action), which
    then needs ``proprio`` and ``actions``). Here each code c of the categorical posterior q
    contributes q(c) * err(base + D(c) - target), summed over all codes (exactly, no
    sampling). The posterior then learns from every code at once which one explains the
    next state, with no straight-through bias or sampling noise: with one sampled code and
    a gradient through it, a posterior that was 60/40 on a gust's direction and a predictor
    that moved 1-3 cm with z kept each other vague (docs/BENCHMARKS.md §5). The
    transformer's tokens, if z has them, still see the sampled code. Measured on Hazard, it
    did no better than the sampled code, under L1 (best-of-16 ratio 0.55 against 0.52) or
    under the squared error (one group of 8 codes: 0.24 against 0.24, coverage of both
    outcomes 56 % against 53 %; docs/BENCHMARKS.md §5, ninth session).

    prop, target (B, T, P); z (B, T, Z); post: the posterior (log-probabilities (B, T, G, C),).
    """
    if model.predictor.z_proprio_mlp is not None and (proprio is None or actions is None):
        raise ValueError("the MLP direct path's marginal loss needs the steps' proprio and actions")
    err = proprio_err(every_code_proprio(model, prop, z, proprio, actions), target.unsqueeze(-2), kind)  # (B, T, M)
    q = model.latent.code_log_probs(post).exp()  # (B, T, M)
    return (q * err).sum(-1).mean()


def held_block_mismatch(store, episodes: list[int], clip_stride: int, frameskip: int) -> str | None:
    """A warning if the episodes' actions were held (``policy_hold`` > 1) in blocks that
    training clips with this stride and frameskip would cut across, else None.

    A model step that spans two held blocks holds the later block's action, which the
    policy chose after seeing the earlier block's outcome (on Hazard, the gust's direction).
    """
    holds = sorted({int(store.entries[e].get("policy_hold", 1)) for e in episodes})
    bad = [h for h in holds if h > 1 and (clip_stride % h or frameskip % h)]
    if not bad:
        return None
    return (
        f"the data's actions are held for {bad} env steps, but objective.clip_stride={clip_stride} and objective.frameskip={frameskip} "
        "are not both multiples of it: a model step's actions then mix two held blocks, and the later one was chosen after seeing "
        "the earlier one's outcome; set objective.clip_stride to the hold"
    )


class WorldTask:
    """Teacher-forcing + rollout objective as a :class:`~worldjepa.train.loop.Task`."""

    def __init__(self, data: ClipDataset, model: WorldModel, obj: WorldObjective) -> None:
        self.data, self.obj, self.module = data, obj, model
        self.weights = None
        if obj.oversample > 0:
            w, st = rare_clip_weights(data, obj.oversample, obj.rare_quantile)
            self.weights = torch.from_numpy(w)
            log.info(
                f"oversampling: {st['rare_steps']:.1%} of the env steps are rare, {st['clips_with_rare']:.1%} of the clips hold one; "
                f"drawn {1 + obj.oversample:g}x as often, they make up {st['drawn_share']:.0%} of the batches"
            )
        if obj.recipe == "frozen":
            for p in model.encoder.parameters():
                p.requires_grad_(False)
        self.trainable_states = obj.recipe == "joint" or model.pooler is not None
        direct = model.predictor.z_proprio if model.predictor.z_proprio is not None else model.predictor.z_proprio_mlp
        if obj.z_marginal_proprio and (direct is None or model.latent.cfg.kind != "categorical"):
            raise ValueError("objective.z_marginal_proprio needs the direct path (predictor.z_to_proprio=true) and predictor.z_kind=categorical")
        if (obj.z_null_cost > 0 or obj.z_null_weight > 0) and not model.predictor.cfg.z_null:  # (z_null implies a latent)
            raise ValueError("objective.z_null_cost and z_null_weight need a null code: set predictor.z_null=true (a categorical z of one group)")
        if obj.z_assign == "wta":
            pc = model.predictor.cfg
            if not (pc.z_kind == "categorical" and pc.z_dim == pc.z_classes and direct is not None):
                raise ValueError(
                    "objective.z_assign=wta picks each step's code by its proprio prediction: it needs one categorical group "
                    "(predictor.z_kind=categorical, z_dim == z_classes) and the direct path (predictor.z_to_proprio=true), "
                    f"got z_kind={pc.z_kind}, z_dim={pc.z_dim}, z_classes={pc.z_classes}, z_to_proprio={pc.z_to_proprio}"
                )
            if obj.z_marginal_proprio or obj.z_null_cost > 0:
                raise ValueError("objective.z_assign=wta has no learned posterior: it does not combine with z_marginal_proprio or z_null_cost")
            # the codes start close together but apart (a resumed run loads its weights over this):
            # the first winners then split the outcomes between them instead of one code
            # starting nearest to everything
            last = direct if isinstance(direct, nn.Linear) else [mod for mod in direct.modules() if isinstance(mod, nn.Linear)][-1]
            with torch.no_grad():
                last.weight.mul_(0.1)
        if obj.z_marginal_proprio:
            # every code starts from the same prediction (a resumed run loads its weights over
            # this): with PyTorch's default init the codes' offsets differ by tenths of a metre,
            # the exact expectation sent every case to the one code that fit best on average,
            # and the posterior collapsed onto it (KL 0.0001 nats per step by step 300)
            last = direct if isinstance(direct, nn.Linear) else [mod for mod in direct.modules() if isinstance(mod, nn.Linear)][-1]
            nn.init.zeros_(last.weight)
            if last.bias is not None and model.predictor.cfg.z_null:
                nn.init.zeros_(last.bias)  # every code starts at the null code's zero offset
        self.sigreg = SIGReg(256) if obj.reg == "sigreg" else None
        # frozen encoder: each episode's patch embeddings are computed once and kept (fp16).
        # Clips start at multiples of the stride and step by the frameskip, so only the
        # frames at multiples of their gcd are ever read: only those are encoded and kept
        # (on Hazard, stride = frameskip = 5, a fifth of the memory and of the encoding)
        self._emb_cache: dict[int, torch.Tensor] = {}
        self._cache_every = math.gcd(data.stride, data.frameskip) if data is not None else 1

    @torch.no_grad()
    def _episode_patches(self, ep: int, device: torch.device) -> torch.Tensor:
        """Patch embeddings (fp16) of episode ``ep``'s frames 0, g, 2g, ... (g = ``_cache_every``)."""
        if ep not in self._emb_cache:
            enc = self.module.encoder.eval()
            frames = torch.from_numpy(self.data.store.load(ep)["frames"][:: self._cache_every]).to(device)
            chunks = [enc.encode_frames(frames[i : i + 128].unsqueeze(0))[0] for i in range(0, len(frames), 128)]
            self._emb_cache[ep] = torch.cat(chunks).to(torch.float16)  # (ceil((L+1)/g), N, D)
        return self._emb_cache[ep]

    def batch(self, step: int, device: torch.device) -> dict:
        gen = torch.Generator().manual_seed(self.obj.seed * 1_000_003 + step)
        if self.weights is None:
            idx = torch.randint(len(self.data), (self.obj.batch_size,), generator=gen)
        else:
            idx = torch.multinomial(self.weights, self.obj.batch_size, replacement=True, generator=gen)
        items = [self.data[int(i)] for i in idx]
        keys = ("actions", "proprio") if self.obj.recipe == "frozen" else ("frames", "actions", "proprio")
        out = {k: torch.stack([it[k] for it in items]).to(device) for k in keys}
        if self.obj.recipe == "frozen":
            T, fs = self.data.clip_len, self.data.frameskip
            patches, g = [], self._cache_every  # t0 and fs are multiples of g
            for i in idx:
                ep, t0 = self.data.locate(int(i))
                patches.append(self._episode_patches(ep, device)[t0 // g : (t0 + T * fs) // g : fs // g])
            out["patches"] = torch.stack(patches).float()  # (B, T, N, D)
        out["seed"] = int(torch.randint(2**31, (1,), generator=gen))
        return out

    def kl_weight(self, step: int) -> float:
        """The KL weight at ``step``: ``kl_weight``, ramped up linearly from 0 over ``kl_warmup`` steps."""
        if self.obj.kl_warmup <= 0:
            return self.obj.kl_weight
        return self.obj.kl_weight * min(1.0, step / self.obj.kl_warmup)

    @staticmethod
    def _delayed_ramp(value: float, warmup: int, step: int) -> float:
        """``value`` at ``step``: 0 for the first ``warmup`` steps, then a linear ramp to full over as many (full from the start when ``warmup`` is 0)."""
        return value * (min(1.0, max(0.0, step / warmup - 1.0)) if warmup > 0 else 1.0)

    def null_cost(self, step: int) -> float:
        """``z_null_cost`` at ``step`` (``z_null_warmup``, as :meth:`_delayed_ramp`)."""
        return self._delayed_ramp(self.obj.z_null_cost, self.obj.z_null_warmup, step)

    def wta_margin(self, step: int) -> float:
        """``z_wta_margin`` at ``step`` (``z_wta_margin_warmup``, as :meth:`_delayed_ramp`)."""
        return self._delayed_ramp(self.obj.z_wta_margin, self.obj.z_wta_margin_warmup, step)

    def proprio_loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The predicted proprio's loss, ``objective.proprio_loss`` (l1 or mse)."""
        return proprio_err(pred, target, self.obj.proprio_loss).mean()

    def code_pass_loss(
        self, s: torch.Tensor, a: torch.Tensor, proprio: torch.Tensor | None, z: torch.Tensor, tgt: torch.Tensor, p: torch.Tensor
    ) -> torch.Tensor:
        """The teacher-forced loss of one more predictor pass with codes ``z`` (B, T-1, Z):
        L1 on the next state tokens ``tgt`` plus ``proprio_weight`` times the proprio loss
        on the next proprio ``p`` (when the model predicts proprio). ``s``, ``a``, ``tgt``,
        ``p`` are whole clips (B, T, ...); ``proprio`` is the context's (B, T-1, P) or None."""
        pred, prop = self.module.predictor(s[:, :-1], a[:, :-1], proprio, z=z)
        loss = F.l1_loss(pred, tgt[:, 1:])
        if prop is not None:
            loss = loss + self.obj.proprio_weight * self.proprio_loss(prop, p[:, 1:])
        return loss

    def wta(self, prop: torch.Tensor, z: torch.Tensor, proprio: torch.Tensor, actions: torch.Tensor, target: torch.Tensor, margin: float = 0.0) -> tuple:
        """Winner takes all over the codes (``objective.z_assign=wta``), for a predictor whose
        transformer does not see z (``predictor.z_token=false``).

        ``prop`` (B, T, P) was predicted with codes ``z`` (B, T, Z); every code's prediction is
        the same transformer output plus that code's direct-path offset. The winners are the
        codes whose predictions fit best (:func:`wta_winner`, with ``margin``). Returns (the
        winning codes' predictions (B, T, P), their one-hot codes (B, T, Z), the winners'
        indices (B, T), the loss: the winner's error plus ``z_wta_relax`` times every code's
        mean error)."""
        every = every_code_proprio(self.module, prop, z, proprio, actions)  # (B, T, M, P)
        err = proprio_err(every, target.unsqueeze(-2), self.obj.proprio_loss)  # (B, T, M)
        win = wta_winner(err.detach(), (every.detach() - target.unsqueeze(-2)).norm(dim=-1), margin)  # (B, T)
        chosen = every.gather(2, win[..., None, None].expand(*win.shape, 1, every.shape[-1])).squeeze(2)
        codes = self.module.latent.all_codes().to(prop)
        loss = err.gather(2, win[..., None]).mean() + self.obj.z_wta_relax * err.mean()
        return chosen, codes[win], win, loss

    def loss(self, batch: dict, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        m, obj = self.module, self.obj
        patches = batch["patches"] if "patches" in batch else m.encoder.encode_frames(batch["frames"])  # (B, T, N, D)
        s = m.pool(patches)  # (B, T, K, D)
        a, p = batch["actions"], batch["proprio"]
        use_p = p if m.spec.proprio_dim else None
        z = None
        metrics = {}
        total = torch.zeros((), device=s.device)
        wta = obj.z_assign == "wta"
        if wta:  # z of each transition: the code whose proprio prediction fits best (chosen below); the prior learns it
            pooled = m.latent_features(s, use_p)
            prior = m.latent.prior(pooled[:, :-1], a[:, :-1])
            codes, bt = m.latent.all_codes().to(s), a[:, :-1].shape[:2]
            z = codes[0].expand(*bt, -1)  # a placeholder code where the transformer does not see z
            if m.predictor.cfg.z_token:  # it does: one pass per code (no gradient) picks each step's winner
                with torch.no_grad():
                    every = torch.stack([m.predictor(s[:, :-1], a[:, :-1], use_p[:, :-1], z=c.expand(*bt, -1))[1] for c in codes], -2)  # (B, T, M, P)
                    gap = every - p[:, 1:].unsqueeze(-2)
                    win = wta_winner(proprio_err(every, p[:, 1:].unsqueeze(-2), obj.proprio_loss), gap.norm(dim=-1), self.wta_margin(step))
                z = codes[win]
        elif m.latent is not None:  # z of each transition from the posterior, which sees the next state
            pooled = m.latent_features(s, use_p)
            post = m.latent.posterior(pooled[:, :-1], a[:, :-1], pooled[:, 1:])
            prior = m.latent.prior(pooled[:, :-1], a[:, :-1])
            gen = torch.Generator().manual_seed(batch["seed"] + 1)
            z = m.latent.sample(post, generator=gen)
            total = total + self.kl_weight(step) * m.latent.balanced_kl(post, prior, obj.kl_balance, obj.free_bits)
            metrics["kl_nats"] = float(m.latent.kl(post, prior).mean().detach())
            if m.predictor.cfg.z_null:
                q_null = post[0][..., 0, 0].exp()
                metrics["post_null"] = float(q_null.mean().detach())
                cost = self.null_cost(step)
                if cost > 0:
                    total = total + cost * (1 - q_null).mean()
        # teacher forcing: steps 0..T-2 predict 1..T-1
        tgt = s.detach() if obj.target_stopgrad else s
        ctx_p = use_p[:, :-1] if use_p is not None else None
        pred, prop = m.predictor(s[:, :-1], a[:, :-1], ctx_p, z=z)
        tf = F.l1_loss(pred, tgt[:, 1:])
        total = total + tf
        metrics["tf_loss"] = float(tf.detach())
        if wta:
            if m.predictor.cfg.z_token:  # the winners' own pass is scored; relax: one more pass, a random code per step
                pl = self.proprio_loss(prop, p[:, 1:])
                if obj.z_wta_relax > 0:
                    other = codes[torch.randint(len(codes), bt, generator=torch.Generator().manual_seed(batch["seed"] + 2))]
                    rl = self.code_pass_loss(s, a, ctx_p, other, tgt, p)
                    total = total + obj.z_wta_relax * rl
                    metrics["relax_loss"] = float(rl.detach())
            else:
                _, z, win, pl = self.wta(prop, z, ctx_p, a[:, :-1], p[:, 1:], margin=self.wta_margin(step))
            ce = -m.latent.code_log_probs(prior).gather(-1, win[..., None]).mean()  # KL(one-hot winner || prior)
            total = total + self.kl_weight(step) * ce + obj.proprio_weight * pl
            metrics["kl_nats"] = float(ce.detach())
            metrics["proprio_loss"] = float(pl.detach())
            metrics["codes_used"] = float((torch.bincount(win.flatten(), minlength=z.shape[-1]) > 0).sum())
        elif prop is not None:
            if obj.z_marginal_proprio:
                pl = marginal_proprio_loss(m, prop, z, post, p[:, 1:], kind=obj.proprio_loss, proprio=p[:, :-1], actions=a[:, :-1])
            else:
                pl = self.proprio_loss(prop, p[:, 1:])
            total = total + obj.proprio_weight * pl
            metrics["proprio_loss"] = float(pl.detach())
        if obj.z_null_weight > 0:  # the null code's own prediction, on every step: what the model expects without z
            z0 = torch.zeros_like(z.detach())
            z0[..., 0] = 1.0
            nl = self.code_pass_loss(s, a, ctx_p, z0, tgt, p)
            total = total + obj.z_null_weight * nl
            metrics["null_loss"] = float(nl.detach())
        if obj.rollout_steps > 0:
            C = obj.history
            seq_s, seq_p = s[:, :C], (use_p[:, :C] if use_p is not None else None)
            roll, roll_p = 0.0, 0.0
            for k in range(obj.rollout_steps):
                nxt, nprop = m.predictor(seq_s, a[:, : C + k], seq_p, z=z[:, : C + k] if z is not None else None)
                roll = roll + F.l1_loss(nxt[:, -1], tgt[:, C + k])
                if nprop is not None:
                    last = nprop[:, -1:]
                    if wta and not m.predictor.cfg.z_token:  # the code that fits this rolled-out step best (the transformer does not see z)
                        last, _, _, lp = self.wta(
                            last, z[:, C + k - 1 : C + k], seq_p[:, -1:], a[:, C + k - 1 : C + k], p[:, C + k : C + k + 1], margin=self.wta_margin(step)
                        )
                    elif obj.rollout_proprio:
                        lp = self.proprio_loss(last, p[:, C + k : C + k + 1])
                    if obj.rollout_proprio:
                        roll_p = roll_p + lp
                seq_s = torch.cat([seq_s, nxt[:, -1:]], 1)
                seq_p = torch.cat([seq_p, last], 1) if seq_p is not None else None
            roll = roll / obj.rollout_steps
            if obj.rollout_proprio and prop is not None:
                roll_p = roll_p / obj.rollout_steps
                total = total + obj.rollout_weight * obj.proprio_weight * roll_p
                metrics["rollout_proprio_loss"] = float(roll_p.detach())
            total = total + obj.rollout_weight * roll
            metrics["rollout_loss"] = float(roll.detach())
        if obj.idm_weight > 0:
            idm = F.mse_loss(m.inverse_dynamics(s[:, :-1], s[:, 1:]), a[:, :-1])
            total = total + obj.idm_weight * idm
            metrics["idm_loss"] = float(idm.detach())
        if obj.proprio_decode_weight > 0:
            err = (m.decode_proprio(patches, states=s) - p).abs()
            dec = err.mean()
            with torch.no_grad():
                m.proprio_decoder_err.mul_(0.98).add_(0.02 * err.flatten(0, -2).mean(0).float())
            total = total + obj.proprio_decode_weight * dec
            metrics["proprio_decode_loss"] = float(dec.detach())
        if obj.state_decode_weight > 0:
            sd = (m.decode_state_proprio(s) - p).abs().mean()
            total = total + obj.state_decode_weight * sd
            metrics["state_decode_loss"] = float(sd.detach())
        if self.trainable_states and obj.reg != "none":
            z = s.flatten(0, 2).float()  # (B*T*K, D)
            if obj.reg == "sigreg":
                gen = torch.Generator().manual_seed(batch["seed"])
                sub = z[torch.randperm(len(z), generator=gen)[:512].to(z.device)]
                r = self.sigreg(sub, generator=gen)
            else:
                var, cov = vicreg_terms(z)
                r = var + 0.04 * cov
            total = total + obj.reg_weight * r
            metrics["reg"] = float(r.detach())
        return total, metrics

    def after_step(self, step: int) -> None:
        pass

    def monitor(self, step: int) -> dict[str, float]:
        return {}


def train_world_model(
    data: str,
    run_dir: str,
    enc: EncoderConfig,
    pred: PredictorConfig,
    obj: WorldObjective,
    train: TrainConfig,
    encoder_ckpt: str | None = None,
    device: str = "cpu",
    val_fraction: float = 0.1,
) -> tuple[WorldModel, dict]:
    """Train a world model on the dataset at ``data`` (resumable in ``run_dir``).

    Args:
        encoder_ckpt: a pre-training run's checkpoint directory (its EMA target encoder is
            loaded), or None to start the encoder from scratch (joint recipe only).
    """
    from worldjepa.train.pretrain import load_encoder, set_seed

    probe = ClipDataset(data, clip_len=obj.clip_len, frameskip=obj.frameskip)
    meta_d = probe.meta
    train_eps, val_eps = split_episodes(len(probe.store), val_fraction, seed=0)
    ds = ClipDataset(data, clip_len=obj.clip_len, frameskip=obj.frameskip, episodes=train_eps, stride=obj.clip_stride)
    mismatch = held_block_mismatch(probe.store, train_eps, obj.clip_stride, obj.frameskip)
    if mismatch:
        log.warning(mismatch)
    if obj.recipe == "frozen" and encoder_ckpt is None:
        raise ValueError("the frozen recipe needs a pre-trained encoder: pass encoder=<pretrain run>/final (or use objective.recipe=joint)")
    if obj.idm_weight > 0 and not pred.idm_hidden:
        raise ValueError("objective.idm_weight > 0 needs an inverse-dynamics head: set predictor.idm_hidden > 0")
    if obj.proprio_decode_weight > 0 and not pred.proprio_decoder_hidden:
        raise ValueError("objective.proprio_decode_weight > 0 needs a proprio decoder: set predictor.proprio_decoder_hidden > 0")
    if obj.state_decode_weight > 0 and pred.num_state_tokens == 0:
        # all patch tokens are fixed targets that cannot collapse: nothing to keep informative
        log.info("K = all patches: objective.state_decode_weight is not used")
        obj = replace(obj, state_decode_weight=0.0)
    if obj.state_decode_weight > 0 and not (pred.state_decoder_hidden and pred.proprio_dim):
        raise ValueError(
            "objective.state_decode_weight > 0 needs a state decoder: set predictor.state_decoder_hidden > 0 (and a model with proprio), or the weight to 0"
        )
    if encoder_ckpt is not None:
        pre = load_encoder(encoder_ckpt)
        if pre.cfg != enc:
            raise ValueError(f"encoder checkpoint {encoder_ckpt} has config {pre.cfg}, but the model config asks for {enc}; use the same model= preset")
    if meta_d["image_size"] != enc.image_size:
        raise ValueError(f"dataset frames are {meta_d['image_size']} px but the encoder expects {enc.image_size} px")
    spec = WorldModelSpec(
        task=meta_d["task"],
        image_size=enc.image_size,
        env_action_dim=meta_d["action_dim"],
        frameskip=obj.frameskip,
        proprio_dim=pred.proprio_dim,
        history=obj.history,
    )
    set_seed(obj.seed)
    model = WorldModel(enc, pred, spec)
    if encoder_ckpt is not None:
        model.encoder.load_state_dict(pre.state_dict())
    task = WorldTask(ds, model, obj)
    meta = {
        **model.meta(),
        "objective": asdict(obj),
        "data": os.path.abspath(data),
        "train_episodes": train_eps,
        "val_episodes": val_eps,
        "encoder_ckpt": encoder_ckpt,
    }
    metrics = Trainer(task, train, run_dir, meta, device=device).fit()
    return model.eval(), metrics
