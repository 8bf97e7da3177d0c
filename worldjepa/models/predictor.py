"""Action-conditioned predictor: a block-causal transformer over time steps.

Each time step t is one block of tokens ``[action a_t, proprio p_t, state s_t^1..s_t^K]``
(plus, later, latent-variable tokens). A token of step t attends to every token of
steps <= t, so the outputs at the state tokens of step t, which have seen a_t, predict
the state of step t + 1. The K state tokens come from the encoder's patch tokens
through an attentive pooler (``K = 0`` keeps all patches, as in V-JEPA 2-AC).

Positions: every token gets temporal RoPE (its step); state tokens also get spatial RoPE
when they are patches, or a learned slot embedding when pooled. Action and proprio
tokens have learned type embeddings and separate linear heads.

Rollout is autoregressive with a KV cache: step t's block attends to the cached keys and
values of earlier blocks instead of re-running the whole sequence.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from worldjepa.models.rope import rope_angles, sincos_3d
from worldjepa.models.vit import Block, init_weights, mlp


@dataclass(frozen=True)
class PredictorConfig:
    """Sizes of the action-conditioned predictor (configs/predictor/*.yaml)."""

    enc_dim: int = 192  # encoder token width
    grid: int = 8  # encoder patches per image side (used when num_state_tokens = 0)
    num_state_tokens: int = 1  # K pooled state tokens per frame; 0 = all grid*grid patches
    action_dim: int = 2  # model action size (env action size x frameskip)
    proprio_dim: int = 0  # 0 disables the proprio token
    dim: int = 192  # predictor width
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    max_steps: int = 32  # longest sequence (context + rollout) the predictor accepts
    idm_hidden: int = 0  # hidden width of the inverse-dynamics head (s_t, s_t+1) -> a_t; 0 = none
    proprio_decoder_hidden: int = 0  # hidden width of the state -> proprio decoder (goal proprio from a goal image); 0 = none
    proprio_decoder_input: str = "patches"  # what that decoder reads: "patches" (all patch tokens) or "states" (the K pooled tokens)
    state_decoder_hidden: int = 0  # hidden width of a pooled-state -> proprio decoder (an auxiliary loss that keeps the pooled tokens informative); 0 = none
    z_dim: int = 0  # per-step latent variable size (worldjepa/models/latent.py); 0 = deterministic
    z_hidden: int = 128  # hidden width of the latent prior/posterior heads
    z_kind: str = "gaussian"  # gaussian | categorical (z_dim / z_classes one-hot groups, straight-through)
    z_classes: int = 4  # categorical: codes per group
    z_inputs: str = "both"  # what the latent heads see of a step: "both" (pooled state tokens + proprio) or "proprio" only
    z_to_proprio: bool = False  # z also reaches the predicted proprio through a linear path beside the transformer
    z_proprio_hidden: int = 0  # with z_to_proprio: 0 = that path is linear in z; > 0 = an MLP of this width over (z, the step's proprio, its action)
    z_token: bool = True  # z enters the transformer (a token per step and a shift of the state tokens); false: only through the direct path to the proprio (needs z_to_proprio)
    z_null: bool = False  # categorical z of one group: code 0 is the "nothing random happened" code; it reaches no path (zero token input, no state shift, no direct-path offset)
    proprio_residual: bool = False  # the proprio head predicts the change from the step's proprio (next = proprio + head), not the next proprio itself
    proprio_skip: bool = False  # with proprio_residual: a linear map of the step's (proprio, action) is added to that change, beside the transformer (which then learns what it misses: walls, pits, gusts)

    def __post_init__(self) -> None:
        if self.proprio_decoder_input not in ("patches", "states"):
            raise ValueError(f"predictor.proprio_decoder_input must be 'patches' or 'states', got {self.proprio_decoder_input!r}")
        if self.z_inputs not in ("both", "proprio"):
            raise ValueError(f"predictor.z_inputs must be 'both' or 'proprio', got {self.z_inputs!r}")
        if self.proprio_skip and not (self.proprio_residual and self.proprio_dim):
            raise ValueError(
                "predictor.proprio_skip adds a linear (proprio, action) term to the predicted proprio change: it needs proprio_residual=true and proprio_dim > 0"
            )
        if self.z_proprio_hidden < 0 or (self.z_proprio_hidden and not self.z_to_proprio):
            raise ValueError(f"predictor.z_proprio_hidden must be >= 0 and needs z_to_proprio=true, got {self.z_proprio_hidden}")
        if self.z_dim and not self.z_token and not self.z_to_proprio:
            raise ValueError("predictor.z_token=false leaves z only the direct path to the proprio: set predictor.z_to_proprio=true")
        if self.z_null and not (self.z_dim and self.z_kind == "categorical" and self.z_dim == self.z_classes):
            raise ValueError(
                f"predictor.z_null needs a categorical z of one group (z_kind=categorical, z_dim == z_classes), got z_kind={self.z_kind!r}, z_dim={self.z_dim}, z_classes={self.z_classes}"
            )
        if self.z_to_proprio and not (self.z_dim and self.proprio_dim):
            raise ValueError("predictor.z_to_proprio needs a latent variable and a proprio token (z_dim > 0, proprio_dim > 0)")
        if self.z_dim and self.z_inputs == "proprio" and not self.proprio_dim:
            raise ValueError("predictor.z_inputs='proprio' needs a proprio token (use_proprio: true)")
        if self.dim % self.heads:
            raise ValueError(f"predictor dim {self.dim} must be divisible by heads {self.heads}")
        if (
            self.num_state_tokens < 0
            or self.idm_hidden < 0
            or self.proprio_decoder_hidden < 0
            or self.state_decoder_hidden < 0
            or self.action_dim <= 0
            or self.proprio_dim < 0
            or self.max_steps <= 0
        ):
            raise ValueError(
                f"invalid predictor sizes: K={self.num_state_tokens}, action_dim={self.action_dim}, proprio_dim={self.proprio_dim}, max_steps={self.max_steps}"
            )

    @property
    def tokens_per_state(self) -> int:
        return self.num_state_tokens or self.grid * self.grid

    @property
    def block_size(self) -> int:
        """Tokens per time step."""
        return 1 + (1 if self.proprio_dim else 0) + (1 if self.z_dim and self.z_token else 0) + self.tokens_per_state

    def to_dict(self) -> dict:
        return asdict(self)


class AttentivePooler(nn.Module):
    """K learned queries cross-attend over N patch tokens: (B, N, D) -> (B, K, D).

    The patch tokens get a fixed 2D sin-cos position before pooling: a RoPE encoder's
    tokens carry no absolute position in their values, so without it a pooled token
    could say what is in the image but not where (where the arm is, say).
    """

    def __init__(self, dim: int, num_queries: int, heads: int = 4, grid: int = 8) -> None:
        super().__init__()
        heads = heads if dim % heads == 0 else 1
        h, w = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
        pos = torch.stack([torch.zeros_like(h), h, w], -1).reshape(-1, 3).float()
        self.register_buffer("pos", sincos_3d(pos, dim).unsqueeze(0), persistent=False)  # (1, N, D)
        self.queries = nn.Parameter(torch.randn(1, num_queries, dim) * 0.02)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.mlp = mlp(dim, [dim * 2], dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.shape[1] != self.pos.shape[1]:
            raise ValueError(f"the pooler was built for {self.pos.shape[1]} patch tokens, got {tokens.shape[1]}")
        q = self.queries.expand(tokens.shape[0], -1, -1)
        kv = tokens + self.pos.to(tokens.dtype)
        x = self.attn(q, kv, kv, need_weights=False)[0]  # (B, K, D)
        return x + self.mlp(self.norm(x))


class ACPredictor(nn.Module):
    """Block-causal action-conditioned predictor over state tokens. Shapes in ``forward``."""

    def __init__(self, cfg: PredictorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        self.action_in = nn.Linear(cfg.action_dim, d)
        # the action is also added to every state token of its step (FiLM-style shift):
        # as one token among 66 it reached the state tokens too weakly to be learned
        self.action_to_state = nn.Sequential(nn.Linear(cfg.action_dim, d), nn.LayerNorm(d))
        self.proprio_in = nn.Linear(cfg.proprio_dim, d) if cfg.proprio_dim else None
        z_tok = bool(cfg.z_dim and cfg.z_token)
        self.z_in = nn.Linear(cfg.z_dim, d) if z_tok else None
        # z, like the action, is also added to its step's state tokens: as a token only, the
        # predictor learned to ignore it before the posterior had learned to say anything
        self.z_to_state = nn.Sequential(nn.Linear(cfg.z_dim, d), nn.LayerNorm(d)) if z_tok else None
        self.state_in = nn.Linear(cfg.enc_dim, d)
        n_types = 1 + (1 if cfg.proprio_dim else 0) + (1 if z_tok else 0) + (cfg.num_state_tokens or 1)
        self.type_embed = nn.Parameter(torch.zeros(1, n_types, d))  # action, proprio, state slots
        self.blocks = nn.ModuleList(Block(d, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(d)
        self.state_out = nn.Linear(d, cfg.enc_dim)
        self.proprio_out = nn.Linear(d, cfg.proprio_dim) if cfg.proprio_dim else None
        init_weights(self, cfg.depth)
        # a direct path z -> next proprio: through the transformer alone, a z that says
        # "pushed up" moved the predicted position by 0.01-0.03 m where the push is 0.18 m,
        # so the posterior got too weak a signal to sharpen, and the two stayed vague together
        self.z_proprio = nn.Linear(cfg.z_dim, cfg.proprio_dim) if cfg.z_to_proprio and not cfg.z_proprio_hidden else None
        # the MLP form: a fixed offset per code (the linear path) must also apply where nothing
        # random happens, so a code shared by a gust and by the 90 % of steps without one was
        # pulled to the median offset, zero; (z, proprio, action) can say "this code pushes
        # up *here*" (docs/BENCHMARKS.md §5)
        self.z_proprio_mlp = mlp(cfg.z_dim + cfg.proprio_dim + cfg.action_dim, [cfg.z_proprio_hidden], cfg.proprio_dim) if cfg.z_proprio_hidden else None
        # a linear skip (proprio, action) -> proprio change: on Hazard a linear least-squares map
        # rolled out five steps to 0.038 m where the transformer's head reached 0.078 m
        # (docs/BENCHMARKS.md §5); zero at the start, so the model starts as without it
        self.proprio_skip = nn.Linear(cfg.proprio_dim + cfg.action_dim, cfg.proprio_dim) if cfg.proprio_skip else None
        if self.proprio_skip is not None:
            nn.init.zeros_(self.proprio_skip.weight)
            nn.init.zeros_(self.proprio_skip.bias)
        nn.init.trunc_normal_(self.type_embed, std=0.02)
        self._mask_cache: dict = {}
        self._pos_cache: dict = {}

    # ----- token layout -----------------------------------------------------------------
    def _block_positions(self, device) -> torch.Tensor:
        """(block_size, 3) (t=0, h, w) positions of one step's tokens."""
        key = str(device)
        if key not in self._pos_cache:
            cfg = self.cfg
            n_pre = self.cfg.block_size - cfg.tokens_per_state
            pre = torch.zeros(n_pre, 3)
            if cfg.num_state_tokens:
                st = torch.zeros(cfg.num_state_tokens, 3)
            else:
                h, w = torch.meshgrid(torch.arange(cfg.grid), torch.arange(cfg.grid), indexing="ij")
                st = torch.stack([torch.zeros_like(h), h, w], -1).reshape(-1, 3).float()
            self._pos_cache[key] = torch.cat([pre, st]).to(device)
        return self._pos_cache[key]

    def _rope(self, t0: int, steps: int, device):
        """cos/sin for ``steps`` blocks starting at step t0: (steps*block_size, head_dim/2)."""
        pos = self._block_positions(device).unsqueeze(0).repeat(steps, 1, 1)  # (S, bs, 3)
        pos[..., 0] = torch.arange(t0, t0 + steps, device=device, dtype=pos.dtype).unsqueeze(1)
        return rope_angles(pos.reshape(-1, 3), self.cfg.dim // self.cfg.heads)

    def block_causal_mask(self, steps: int, device) -> torch.Tensor:
        """(L, L) boolean, L = steps * block_size: True where attention is allowed (built lazily, cached)."""
        key = (steps, str(device))
        if key not in self._mask_cache:
            step_of = torch.arange(steps, device=device).repeat_interleave(self.cfg.block_size)  # (L,)
            self._mask_cache[key] = step_of.unsqueeze(1) >= step_of.unsqueeze(0)
        return self._mask_cache[key]

    def _embed(self, states: torch.Tensor, actions: torch.Tensor, proprio: torch.Tensor | None, z: torch.Tensor | None = None) -> torch.Tensor:
        """Tokens of S steps: states (B, S, K, E), actions (B, S, A), proprio (B, S, P), z (B, S, Z) -> (B, S*bs, d)."""
        B, S = actions.shape[:2]
        parts = [self.action_in(actions).unsqueeze(2)]  # (B, S, 1, d)
        if self.proprio_in is not None:
            if proprio is None:
                raise ValueError(f"this predictor was built with proprio_dim={self.cfg.proprio_dim}; pass proprio (B, T, {self.cfg.proprio_dim})")
            parts.append(self.proprio_in(proprio).unsqueeze(2))
        if self.cfg.z_dim and (z is None or z.shape != (*actions.shape[:2], self.cfg.z_dim)):
            raise ValueError(
                f"this predictor has a latent variable: pass z of shape {(*actions.shape[:2], self.cfg.z_dim)}, got {None if z is None else tuple(z.shape)}"
            )
        if self.z_in is not None:
            parts.append((self.z_in(z) * self._z_gate(z)).unsqueeze(2))
        shift = self.action_to_state(actions)
        if self.z_to_state is not None:
            shift = shift + self.z_to_state(z) * self._z_gate(z)
        parts.append(self.state_in(states) + shift.unsqueeze(2))  # (B, S, K, d)
        x = torch.cat(parts, dim=2)  # (B, S, bs, d)
        te = self.type_embed
        if not self.cfg.num_state_tokens:  # all patches share one "state" type embedding
            te = torch.cat([te[:, :-1], te[:, -1:].expand(-1, self.cfg.tokens_per_state, -1)], dim=1)
        x = x + te.unsqueeze(1)
        return x.reshape(B, S * self.cfg.block_size, -1)

    def _read(
        self, x: torch.Tensor, states: torch.Tensor, z: torch.Tensor | None = None, proprio: torch.Tensor | None = None, actions: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Outputs -> (next states (B, S, K, E), next proprio (B, S, P) or None).

        The state head predicts the change of each state token (residual), so an untrained
        predictor starts at "copy the last state" rather than at zero; with
        ``proprio_residual`` the proprio head does too.
        """
        B, S = states.shape[:2]
        x = self.norm(x).view(B, S, self.cfg.block_size, -1)
        st = x[:, :, -self.cfg.tokens_per_state :]  # (B, S, K, d)
        nxt = states + self.state_out(st)
        prop = self.proprio_out(st.mean(2)) if self.proprio_out is not None else None
        if prop is not None and self.cfg.proprio_residual:
            # a point mass moves 0.25 m per model step on Hazard; read through a linear head
            # from layer-normed features, the absolute next position missed by 2-3 cm per step
            # and 8-10 cm after five (docs/BENCHMARKS.md §5)
            prop = proprio + prop
            if self.proprio_skip is not None:
                prop = prop + self.proprio_skip(torch.cat([proprio, actions], -1))
        if self.z_proprio is not None or self.z_proprio_mlp is not None:
            prop = prop + self.z_direct(z, proprio, actions)
        return nxt, prop

    def _z_gate(self, z: torch.Tensor) -> torch.Tensor | float:
        """1 - (z is the null code) with ``z_null`` (..., 1), else 1: what scales every z path."""
        return 1.0 - z[..., :1] if self.cfg.z_null else 1.0

    def z_direct(self, z: torch.Tensor, proprio: torch.Tensor | None = None, actions: torch.Tensor | None = None) -> torch.Tensor:
        """The direct path's offset to the next proprio for latents z (..., Z) (needs
        ``z_to_proprio``; the MLP form also reads the step's proprio and action (..., P), (..., A))."""
        if self.z_proprio is not None:
            out = self.z_proprio(z)
        elif self.z_proprio_mlp is not None:
            if proprio is None or actions is None:
                raise ValueError("the MLP direct path reads the steps' proprio and actions: pass both")
            out = self.z_proprio_mlp(torch.cat([z, proprio, actions], -1))
        else:
            raise ValueError("this predictor has no direct z -> proprio path (predictor.z_to_proprio=false)")
        return out * self._z_gate(z)

    def _check(self, states, actions, proprio) -> None:
        cfg = self.cfg
        if actions.dim() != 3 or actions.shape[-1] != cfg.action_dim:
            raise ValueError(f"actions must have shape (B, T, {cfg.action_dim}), got {tuple(actions.shape)}")
        if states.dim() != 4 or states.shape[2:] != (cfg.tokens_per_state, cfg.enc_dim) or states.shape[:2] != actions.shape[:2]:
            raise ValueError(
                f"states must have shape (B, T, {cfg.tokens_per_state}, {cfg.enc_dim}) matching actions {tuple(actions.shape[:2])}, got {tuple(states.shape)}"
            )
        if not torch.isfinite(actions).all():
            raise ValueError("actions contain NaN or Inf")
        if states.shape[1] > cfg.max_steps:
            raise ValueError(f"sequence of {states.shape[1]} steps is longer than the predictor's max_steps={cfg.max_steps}")

    # ----- teacher forcing ----------------------------------------------------------------
    def forward(
        self, states: torch.Tensor, actions: torch.Tensor, proprio: torch.Tensor | None = None, z: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Teacher-forced prediction of every next step.

        Args:
            states: (B, T, K, E) state tokens of steps 0..T-1.
            actions: (B, T, A) action taken after each step.
            proprio: (B, T, P) or None.
            z: (B, T, Z) latent of each step's transition (models with z_dim > 0).

        Returns:
            next states (B, T, K, E) predicting steps 1..T, and next proprio (B, T, P) or None.
        """
        self._check(states, actions, proprio)
        S = states.shape[1]
        x = self._embed(states, actions, proprio, z)
        rope = self._rope(0, S, x.device)
        mask = self.block_causal_mask(S, x.device)
        for blk in self.blocks:
            x = blk(x, rope=rope, mask=mask)
        return self._read(x, states, z, proprio, actions)

    # ----- rollout ----------------------------------------------------------------------
    def step(
        self, states: torch.Tensor, actions: torch.Tensor, proprio: torch.Tensor | None, cache: list[dict], t0: int, z: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Append S new steps starting at step t0 to a KV cache and return their predictions.

        ``cache`` is a list with one dict per block (start with ``[{} for _ in blocks]``).
        Within the new steps the block-causal mask applies; earlier steps come from the cache.
        """
        self._check(states, actions, proprio)
        S = states.shape[1]
        if t0 + S > self.cfg.max_steps:
            raise ValueError(f"rollout reaches step {t0 + S}, beyond the predictor's max_steps={self.cfg.max_steps}")
        x = self._embed(states, actions, proprio, z)
        rope = self._rope(t0, S, x.device)
        L = S * self.cfg.block_size
        past = t0 * self.cfg.block_size
        mask = None
        if S > 1:
            new = self.block_causal_mask(S, x.device)
            mask = torch.cat([torch.ones(L, past, dtype=torch.bool, device=x.device), new], dim=1) if past else new
        for blk, c in zip(self.blocks, cache):
            x = blk(x, rope=rope, mask=mask, cache=c)
        return self._read(x, states, z, proprio, actions)

    def rollout(
        self,
        states: torch.Tensor,
        actions: torch.Tensor,
        proprio: torch.Tensor | None = None,
        use_cache: bool = True,
        z_context: torch.Tensor | None = None,
        z_next=None,
        perturb=None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Autoregressive rollout from a context (differentiable when the inputs require grad,
        for gradient planners; call it under ``torch.no_grad()`` otherwise).

        Args:
            states: (B, C, K, E) context state tokens (C >= 1 observed steps).
            actions: (B, C + H - 1, A): the actions after each context step, then the
                H - 1 further actions; the rollout predicts H steps after the context's last.
            proprio: (B, C, P) context proprio, or None.
            use_cache: False re-runs the whole growing sequence each step (for checking).
            z_context: (B, C, Z) latents of the context steps (models with z_dim > 0).
            z_next: for those models, ``z_next(state (B, 1, K, E), proprio (B, 1, P) or None,
                action (B, 1, A)) -> (B, 1, Z)``, the latent of each predicted step.
            perturb: ``perturb(proprio (B, 1, P)) -> (B, 1, P)``, applied to each predicted
                proprio before it is returned and fed to the next step (sampled futures
                with the model's own error, ``WorldModel.sample_futures``).

        Returns:
            predicted states (B, H, K, E) and proprio (B, H, P) or None.
        """
        B, C = states.shape[:2]
        H = actions.shape[1] - C + 1
        if H < 1:
            raise ValueError(f"actions must cover the {C} context steps and the rollout: got {actions.shape[1]} actions")
        if C + H - 1 > self.cfg.max_steps:
            raise ValueError(f"context {C} + horizon {H} exceeds the predictor's max_steps={self.cfg.max_steps} (the longest trained context)")
        preds, props = [], []
        if use_cache:
            cache = [{} for _ in self.blocks]
            nxt, prop = self.step(states, actions[:, :C], proprio, cache, 0, z=z_context)
            s, p = nxt[:, -1:], (prop[:, -1:] if prop is not None else None)
            p = perturb(p) if perturb is not None and p is not None else p
            preds.append(s)
            props.append(p)
            for h in range(1, H):
                a = actions[:, C + h - 1 : C + h]
                s, p = self.step(s, a, p, cache, C + h - 1, z=z_next(s, p, a) if z_next is not None else None)
                p = perturb(p) if perturb is not None and p is not None else p
                preds.append(s)
                props.append(p)
        else:
            seq_s, seq_p, seq_z = states, proprio, z_context
            for h in range(H):
                nxt, prop = self.forward(seq_s, actions[:, : C + h], seq_p, z=seq_z)
                s, p = nxt[:, -1:], (prop[:, -1:] if prop is not None else None)
                p = perturb(p) if perturb is not None and p is not None else p
                preds.append(s)
                props.append(p)
                seq_s = torch.cat([seq_s, s], 1)
                seq_p = torch.cat([seq_p, p], 1) if p is not None else None
                if seq_z is not None and h < H - 1:
                    seq_z = torch.cat([seq_z, z_next(s, p, actions[:, C + h : C + h + 1])], 1)
        out_p = torch.cat(props, 1) if props[0] is not None else None
        return torch.cat(preds, 1), out_p
