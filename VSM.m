function mask = VSM(ir_dir, vi_dir, out_dir, mode)
%VSM  Visible-saliency training masks for infrared/visible pairs (MATLAB and GNU Octave).
%
%   VSM(IR_DIR, VI_DIR, OUT_DIR) writes OUT_DIR/<stem>.png, an 8-bit mask, for every pair of
%   images in IR_DIR and VI_DIR that share a file stem (01.png with 01.jpg).
%   VSM(IR_DIR, VI_DIR, OUT_DIR, MODE) chooses the mask:
%     'binary' (default)  255 where V_vi > V_ir, or V_vi = V_ir > 0; 0 elsewhere. This is the
%                         8-bit PNG of V_vi ./ (V_vi - V_ir) that FISCNet's masks were made with.
%     'weight'            0.5 + 0.5 * (V_vi - V_ir), scaled to 0..255 (Ma et al. 2017).
%   MASK = VSM(IR, VI, [], MODE) takes two image arrays (uint8, uint16 or logical; gray or RGB;
%   same size) instead of folders and returns the uint8 mask.
%
%   V is the global-contrast saliency of Ma et al. (2017): for the 8-bit gray image I with
%   256-bin histogram h, S(k) = sum_j h(j) * |k - j| and V(p) = S(I(p)), min-max normalised to
%   [0, 1] over the image (mat2gray). A constant image has no salient pixel: V = 0 everywhere.
%
%   Gray image: a colour visible image becomes the mean of its three channels rounded to uint8,
%   a colour infrared image gives its red channel (the one the training pipeline uses); a gray
%   image stored as RGB gives back its channel either way; 16-bit data is first scaled to 8 bits per
%   channel as round(v / 257); a palette image is expanded first; an EXIF orientation is applied.
%
%   The same masks, bit for bit, come from
%     python scripts/data_preparation/generate_saliency_masks.py --ir IR_DIR --vi VI_DIR --out OUT_DIR
%   This function is the readable reference: it follows the formula level by level and needs
%   no toolbox (mat2gray and im2uint8 are written out, which also fixes their rounding).
%
%   Errors (identifier VSM:input): a missing or empty folder, two images with one stem, a stem
%   without a partner, an unreadable or unsupported image, or a pair whose sizes differ.

  if nargin < 4 || isempty(mode)
    mode = 'binary';
  end
  if ~ischar(mode) || ~any(strcmp(mode, {'binary', 'weight'}))
    error('VSM:input', 'mode must be ''binary'' or ''weight''');
  end
  if nargin >= 2 && (isnumeric(ir_dir) || islogical(ir_dir))
    ir_gray = to_gray(ir_dir, 'IR', true);
    vi_gray = to_gray(vi_dir, 'VI', false);
    if ~isequal(size(ir_gray), size(vi_gray))
      error('VSM:input', 'the IR and VI arrays differ in size');
    end
    mask = saliency_mask(ir_gray, vi_gray, mode);
    return;
  end
  if nargin < 3
    error('VSM:input', 'usage: VSM(ir_dir, vi_dir, out_dir[, mode]) or mask = VSM(ir, vi, [], mode)');
  end

  ir = list_images(ir_dir);
  vi = list_images(vi_dir);
  check_partners(ir, vi, vi_dir, 'visible');
  check_partners(vi, ir, ir_dir, 'infrared');
  if strcmp(canonical(out_dir), canonical(ir_dir)) || strcmp(canonical(out_dir), canonical(vi_dir))
    error('VSM:input', '%s: the output folder is an input folder; choose another', out_dir);
  end
  if ~exist(out_dir, 'dir')
    mkdir(out_dir);
  end

  for i = 1:numel(ir.stems)
    stem = ir.stems{i};
    ir_file = ir.files{i};
    vi_file = vi.files{strcmp(vi.stems, stem)};
    ir_gray = read_gray(ir_file, true);
    vi_gray = read_gray(vi_file, false);
    if ~isequal(size(ir_gray), size(vi_gray))
      error('VSM:input', ['%s: size %dx%d differs from the infrared image %s (%dx%d); ' ...
                          'register the pair or remove it'], vi_file, size(vi_gray, 2), size(vi_gray, 1), ir_file, size(ir_gray, 2), size(ir_gray, 1));
    end
    imwrite(saliency_mask(ir_gray, vi_gray, mode), fullfile(out_dir, [stem '.png']));
  end
end


function listing = list_images(folder)
% Image files directly in FOLDER, sorted by name; other files (Thumbs.db) and hidden files are
% skipped, as in the Python tools.
  extensions = {'.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm', '.pnm'};
  if ~exist(folder, 'dir')
    error('VSM:input', '%s: folder not found; check the path', folder);
  end
  entries = dir(folder);
  names = sort({entries(~[entries.isdir]).name});
  listing.stems = {};
  listing.files = {};
  for i = 1:numel(names)
    [~, stem, ext] = fileparts(names{i});
    if names{i}(1) == '.' || ~any(strcmpi(ext, extensions))
      continue;
    end
    if any(strcmp(listing.stems, stem))
      error('VSM:input', '%s: two images share the stem "%s"; keep one of them', folder, stem);
    end
    listing.stems{end + 1} = stem;
    listing.files{end + 1} = fullfile(folder, names{i});
  end
  if isempty(listing.stems)
    error('VSM:input', '%s: no image files (%s) in this folder', folder, strjoin(extensions, ', '));
  end
end


function check_partners(have, other, other_dir, role)
% Every stem of HAVE needs an image in OTHER.
  missing = setdiff(have.stems, other.stems);
  if ~isempty(missing)
    error('VSM:input', '%s: no %s image for %d stem(s): %s; add the partners or remove those files', ...
          other_dir, role, numel(missing), strjoin(missing, ', '));
  end
end


function path = canonical(folder)
% Absolute path of an existing folder ('' when it does not exist yet).
  path = '';
  if exist(folder, 'dir')
    here = pwd();
    cd(folder);
    path = pwd();
    cd(here);
  end
end


function gray = read_gray(file, infrared)
% The 8-bit gray image of FILE (H x W uint8); INFRARED: see to_gray.
  try
    [img, map] = imread(file);
    info = imfinfo(file);
  catch err
    error('VSM:input', '%s: not a readable image (%s); replace or remove it', file, err.message);
  end
  if ~isempty(map)
    % Palette entries come back as doubles v/255; round(.*255) recovers the stored bytes.
    palette = uint8(round(map * 255));
    if isinteger(img)
      index = double(img) + 1;
    else
      index = img;
    end
    img = reshape(palette(index, :), [size(index) size(palette, 2)]);
  end
  img = orient(img, info(1));
  gray = to_gray(img, file, infrared);
end


function img = orient(img, info)
% Apply the EXIF orientation (codes 2-8), as image decoders that honour it do.
  if ~isfield(info, 'Orientation') || isempty(info.Orientation)
    return;
  end
  switch info.Orientation
    case 2, img = flip_columns(img);
    case 3, img = flip_rows(flip_columns(img));
    case 4, img = flip_rows(img);
    case 5, img = permute(img, [2 1 3]);
    case 6, img = flip_columns(permute(img, [2 1 3]));
    case 7, img = flip_rows(flip_columns(permute(img, [2 1 3])));
    case 8, img = flip_rows(permute(img, [2 1 3]));
  end
end


function img = flip_columns(img)
  img = img(:, end:-1:1, :);
end


function img = flip_rows(img)
  img = img(end:-1:1, :, :);
end


function gray = to_gray(img, file, infrared)
% uint16 -> round(v / 257) per channel (never a tie). Colour visible -> mean of the three
% channels, rounded half away from zero by uint8 (a mean of three integers is never a tie
% either); colour infrared -> the red channel, which the training pipeline uses as infrared.
  if islogical(img)
    img = uint8(img) * 255;
  elseif isa(img, 'uint16')
    img = uint8(double(img) / 257);
  elseif ~isa(img, 'uint8')
    error('VSM:input', '%s: unsupported pixel type %s; convert the image to 8 or 16 bits', file, class(img));
  end
  switch size(img, 3)
    case 1
      gray = img;
    case 3
      if infrared
        gray = img(:, :, 1);
      else
        gray = uint8(sum(double(img), 3) / 3);
      end
    otherwise
      error('VSM:input', '%s: %d channels (CMYK?) are not supported; save it as gray or RGB', file, size(img, 3));
  end
end


function mask = saliency_mask(ir_gray, vi_gray, mode)
% 8-bit mask of one pair (see the help text for the two modes).
  v_ir = global_contrast_saliency(ir_gray);
  v_vi = global_contrast_saliency(vi_gray);
  if strcmp(mode, 'binary')
    % The sign of V_vi - V_ir is that of this comparison, so the clipped ratio is exactly this.
    mask = uint8(v_vi > v_ir | (v_vi == v_ir & v_vi > 0)) * 255;
  else
    % uint8 rounds half away from zero and saturates: im2uint8 written out.
    mask = uint8(255 * (0.5 + 0.5 * (v_vi - v_ir)));
  end
end


function v = global_contrast_saliency(gray)
% Ma et al. (2017): S(k) = sum_j h(j) * |k - j| for every gray level k, V(p) = S(I(p)), then
% min-max normalised over the image. S holds integers, exact in double; the normalisation is one
% division, so the result is the same in any IEEE arithmetic.
  h = accumarray(double(gray(:)) + 1, 1, [256 1]);
  s = zeros(256, 1);
  for k = 0:255
    for j = 0:255
      s(k + 1) = s(k + 1) + h(j + 1) * abs(k - j);
    end
  end
  v = zeros(size(gray));
  for k = 0:255
    v(gray == k) = s(k + 1);
  end
  low = min(v(:));
  high = max(v(:));
  if high == low
    v = zeros(size(gray));
  else
    v = (v - low) / (high - low);
  end
end
